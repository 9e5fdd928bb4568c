"""kill -9 at every step of the state side's journal (queue/state_journal.h,
docs/INTERNALS.md "The state side"): nothing acknowledged is lost.

tests/tools/statetool appends numbered records in group commits and prints
"ack N" only after the fdatasync of N's group returned; it writes
checkpoints every few records. Each run is killed (SIGKILL, by itself, at
the Nth time it reaches a named crash point, or from outside at a random
moment) and the next run starts on what it left. After every kill the
journal is replayed and every acknowledged number must be there, each once.
ONEHOP_KILL_LOOP (default 100) sets the number of outside kills.
"""

import os
import random
import re
import signal
import subprocess
import time

import pytest

from fixtures.paths import tool_path

STEPS = ["append", "commit", "segment-new", "checkpoint-write", "checkpoint-synced",
         "checkpoint-renamed", "segment-remove"]


@pytest.fixture
def statetool():
    path = tool_path("statetool")
    if path is None:
        pytest.fail("statetool is missing: make tools (or set ONEHOP_TOOLS)", pytrace=False)
    return path


def acks_of(output):
    return [int(m.group(1)) for m in re.finditer(r"^ack (\d+)$", output, re.M)]


def dump(statetool, state_dir):
    out = subprocess.run([str(statetool), "dump", str(state_dir)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    report = lines[-1]
    assert report.startswith("report "), out.stdout[-200:]
    return [int(x) for x in lines[:-1]], report


def check_nothing_lost(statetool, state_dir, acked):
    numbers, report = dump(statetool, state_dir)
    assert len(numbers) == len(set(numbers)), "a record replayed twice: " + report
    missing = acked - set(numbers)
    assert not missing, "acknowledged but lost: %s (%s)" % (sorted(missing)[:10], report)
    return numbers, report


def run_append(statetool, state_dir, count, group, every, crash=None, timeout=60):
    argv = [str(statetool), "append", str(state_dir), str(count), str(group), str(every)]
    if crash:
        argv.append(crash)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("step", STEPS)
def test_kill_at_each_step(tmp_path, statetool, step):
    state_dir = tmp_path / "state"
    acked = set()
    killed = 0
    for nth in range(1, 5):
        out = run_append(statetool, state_dir, 60, 7, 15, "%s:%d" % (step, nth))
        assert out.returncode in (0, -signal.SIGKILL), out.stderr
        killed += out.returncode == -signal.SIGKILL
        acked.update(acks_of(out.stdout))
        check_nothing_lost(statetool, state_dir, acked)
    assert killed == 4, "the crash point %s was reached only %d times" % (step, killed)
    assert len(acked) > 0
    # The state goes on: a clean run appends after everything replayed.
    out = run_append(statetool, state_dir, 10, 5, 0)
    assert out.returncode == 0, out.stderr
    new = acks_of(out.stdout)
    assert len(new) == 10 and min(new) > max(acked)
    acked.update(new)
    check_nothing_lost(statetool, state_dir, acked)


def test_kill_at_random_moments(tmp_path, statetool):
    state_dir = tmp_path / "state"
    loops = int(os.environ.get("ONEHOP_KILL_LOOP", "100"))
    rng = random.Random(8)
    acked = set()
    killed = 0
    for _ in range(loops):
        proc = subprocess.Popen([str(statetool), "append", str(state_dir), "100000", "13",
                                 "500"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        time.sleep(rng.uniform(0.002, 0.05))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode in (0, -signal.SIGKILL), err
        killed += proc.returncode == -signal.SIGKILL
        acked.update(acks_of(out))
    numbers, report = check_nothing_lost(statetool, state_dir, acked)
    assert killed >= loops * 0.9
    assert len(acked) >= loops, "too few acknowledgements to mean anything: %d" % len(acked)
    assert "damaged=0" in report, report


def test_torn_tail_after_kill_is_cut(tmp_path, statetool):
    state_dir = tmp_path / "state"
    out = run_append(statetool, state_dir, 30, 10, 0)
    assert out.returncode == 0
    segment = sorted(p for p in os.listdir(state_dir) if p.startswith("journal."))[-1]
    with open(state_dir / segment, "ab") as f:
        f.write(b"n\x00\x00\x00\x05123")  # a record cut short, as by a kill mid-write
    size = os.path.getsize(state_dir / segment)
    numbers, report = check_nothing_lost(statetool, state_dir, set(range(1, 31)))
    assert "torn=8" in report, report
    assert os.path.getsize(state_dir / segment) == size - 8
    assert sorted(numbers) == list(range(1, 31))
