"""onehop's soak (issue 14 item 2): a real instance, started as root with
the SPEC 7 accounts, under a steady mixed load, against SMTP peers and a
DNS server that fail at random, while a chaos loop kill -9s its daemons;
then the faults are removed, the queue drained, and every accepted message
accounted for. Run it through scripts/soak.sh (`make soak`), which gives
it the private mount namespace it needs (below).

What it does, in order:
  1. the accounts (BASE-smtpd, -queue, -router, -dns, -remote; BASE is
     $ONEHOP_TEST_ACCOUNTS, default ohsoak) made as the integration suite's
     `accounts` fixture makes them (tests/integration/conftest.py);
  2. an installed-like instance: /etc/onehop is this run's configuration
     directory (scripts/soak.sh binds it there in a private mount
     namespace), daemon_dir holds the programs of --bin with onehop-queue
     copied set-uid to the queue account, as `make install` does, so that
     sendmail and the router's DSNs commit as the queue account (a set-uid
     onehop-queue keeps its privilege only for the compiled-in directory);
     local delivery to Maildirs under WORK/mail (local_users = any), remote
     delivery by MX through onehop-dnscache to the peers of faults.py;
  3. `onehop start`; the injectors (inject.py) and the chaos loop
     (chaos.py) for --seconds;
  4. heal the world, `onehop flush`, wait (bounded) until `onehop qstat`
     counts nothing; `onehop status`; `onehop stop`;
  5. check.py over what the peers and Maildirs hold; sanitizer reports
     (ASAN_OPTIONS/UBSAN_OPTIONS log_path under WORK/san) and report lines
     in the log; pflogsumm over the log; the result table (WORK/result.md,
     WORK/result.json, standard output).
Exit status: 0 when nothing is lost, no sanitizer reported, no daemon is
in a crash loop and the queue drained; 1 otherwise; 2 when it cannot run.

It must never: touch the host's /etc (only the namespace's overlay), use
ports outside --port-base .. +9 (34000-34999 is the soak's range), or leave
a process of its own running.
"""

import argparse
import collections
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))

import check  # noqa: E402
from chaos import Chaos, run_onehop  # noqa: E402
from faults import World  # noqa: E402
from inject import LOCAL_DOMAIN, Injectors  # noqa: E402

CONFIG_DIR = "/etc/onehop"
SAN_RE = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                    r"SUMMARY: (Address|Undefined|Leak)")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", required=True, help="directory of the onehop programs")
    p.add_argument("--work", required=True, help="this run's directory (its etc/ is "
                   "/etc/onehop in the namespace)")
    p.add_argument("--seconds", type=float, default=1200)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--seed", default="onehop-soak")
    p.add_argument("--port-base", type=int, default=34000)
    p.add_argument("--drain-seconds", type=float, default=900)
    p.add_argument("--label", default="")
    return p.parse_args()


# ------------------------------------------------------------------ accounts


def make_accounts(base):
    """The SPEC 7 accounts, as the integration suite's `accounts` fixture."""
    from conftest import ACCOUNT_ROLES, Accounts, _drop_accounts
    _drop_accounts(base)
    for role in ACCOUNT_ROLES:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                        "%s-%s" % (base, role)], check=True, capture_output=True, timeout=60)
    return Accounts(base), lambda: _drop_accounts(base)


# ------------------------------------------------------------------ instance


def make_instance(args, work, bin_dir, accounts, world):
    etc = work / "etc"
    if not os.path.isdir(CONFIG_DIR) or not os.path.samefile(CONFIG_DIR, etc):
        raise SystemExit("soak: %s is not %s: run me through scripts/soak.sh (a private "
                         "mount namespace)" % (CONFIG_DIR, etc))
    libexec = work / "libexec"
    libexec.mkdir()
    for program in bin_dir.iterdir():
        if program.name.startswith("onehop-") and program.name != "onehop-queue":
            (libexec / program.name).symlink_to(program)
    queue = accounts["queue"]
    shutil.copy2(bin_dir / "onehop-queue", libexec / "onehop-queue")
    os.chown(libexec / "onehop-queue", queue.pw_uid, queue.pw_gid)
    os.chmod(libexec / "onehop-queue", 0o4755)
    for d in ("log", "mail", "san"):
        (work / d).mkdir()
    os.chmod(work / "san", 0o1777)  # every account writes its reports there
    log = work / "log" / "maillog"
    log.touch()
    os.chmod(log, 0o666)  # every account appends to the one log
    os.chmod(work, 0o755)
    os.chmod(work / "log", 0o755)
    conf = {
        "myhostname": "mta.soak.test",
        "local_domains": "mta.soak.test, %s" % LOCAL_DOMAIN,
        "mynetworks": "127.0.0.0/8",
        "smtp_listen": "127.0.0.1:%d" % args.port_base,
        "queue_dir": str(work / "queue"),
        "run_dir": str(work / "run"),
        "log": str(log),
        "daemon_dir": str(libexec),
        "user": accounts.base,
        "dns_servers": world.dns.address,
        "remote_port": str(world.peers.port),
        "retry_min": "2s",
        "retry_max": "30s",
        "smtp_connect_timeout": "3s",
        "smtp_greeting_timeout": "5s",
        "smtp_command_timeout": "5s",
        "smtp_data_timeout": "8s",
        "mailbox": "%s/mail/%%u/Maildir/" % work,
        "local_users": "any",
    }
    (etc / "onehop.conf").write_text("".join("%s = %s\n" % kv for kv in conf.items()))
    for name in ("routes", "sites", "aliases"):
        (etc / name).write_text("")
    for path in etc.iterdir():
        os.chmod(path, 0o644)
    os.chmod(etc, 0o755)


def environment(work):
    env = dict(os.environ)
    env.pop("ONEHOP_CONFIG", None)
    san = work / "san"
    env["ASAN_OPTIONS"] = "log_path=%s/asan:detect_leaks=1:abort_on_error=0" % san
    env["UBSAN_OPTIONS"] = "log_path=%s/ubsan:print_stacktrace=1:halt_on_error=1" % san
    return env


# ------------------------------------------------------------------- phases


def progress(onehop, injectors, started, out):
    q = onehop("qstat", "--json", timeout=30)
    try:
        qs = json.loads(q.stdout)
    except ValueError:
        qs = {"total": "?"}
    out("%5.0f s: accepted smtp %d sendmail %d, failed smtp %d sendmail %d; queue %s" % (
        time.monotonic() - started, injectors.count("smtp", "accepted"),
        injectors.count("sendmail", "accepted"),
        injectors.count("smtp", "failed") + injectors.count("smtp", "refused"),
        injectors.count("sendmail", "failed"), qs.get("total")))


def ensure_running(onehop, out):
    """After the chaos: the master up (an operator's `onehop start` if not)."""
    r = onehop("status", "--json", timeout=30)
    try:
        if r.returncode == 0 and json.loads(r.stdout).get("running"):
            return True
    except ValueError:
        pass
    out("after the chaos the instance is not running: onehop start")
    return onehop("start", timeout=90).returncode == 0


def crash_loops(log_path):
    text = log_path.read_text(errors="replace")
    return [l for l in text.splitlines() if "crash loop" in l and "/master[" in l]


def drain(onehop, seconds, out):
    """onehop flush, then wait until qstat counts nothing; (drained, qstat, s)."""
    started = time.monotonic()
    last_flush = 0.0
    qs = {}
    while time.monotonic() - started < seconds:
        if time.monotonic() - last_flush >= 30:
            r = onehop("flush", timeout=60)
            out("onehop flush: exit %d %s" % (r.returncode, r.stderr.strip()[:200]))
            last_flush = time.monotonic()
        r = onehop("qstat", "--json", timeout=30)
        try:
            qs = json.loads(r.stdout)
        except ValueError:
            qs = {}
        if r.returncode == 0 and qs.get("total") == 0:
            return True, qs, time.monotonic() - started
        time.sleep(2)
    return False, qs, time.monotonic() - started


def final_status(onehop, log_path):
    r = onehop("status", "--json", timeout=30)
    try:
        status = json.loads(r.stdout)
    except ValueError:
        status = {}
    return status, crash_loops(log_path)


def sanitizer_reports(work):
    files = sorted(p for p in (work / "san").glob("*") if p.is_file())
    log_lines = [l for l in (work / "log" / "maillog").read_text(errors="replace").splitlines()
                 if SAN_RE.search(l)]
    return files, log_lines


PFLOG_ROWS = ("received", "delivered", "forwarded", "deferred", "bounced", "rejected")


def pflogsumm(log_path):
    """pflogsumm --syslog-name=onehop's Grand Totals (a dict), or None."""
    exe = shutil.which("pflogsumm")
    if exe is None:
        return None
    r = subprocess.run([exe, "--syslog-name=onehop", "--problems-first", str(log_path)],
                       capture_output=True, text=True, timeout=600)
    totals = {}
    for row in PFLOG_ROWS:
        m = re.search(r"^\s*(\d+)([km]?)\s+%s\b(?:\s+\((\d+)([km]?)\s+deferrals\))?" % row,
                      r.stdout, re.M)
        if m:
            totals[row] = _units(m.group(1), m.group(2))
            if m.group(3):
                totals["deferrals"] = _units(m.group(3), m.group(4))
    return totals


def _units(n, unit):
    return int(n) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]


def log_counts(log_path):
    """What onehop's own log says: status= lines by daemon and status."""
    counts = collections.Counter()
    rx = re.compile(r"onehop/(\w+)\[\d+\]: \w+: to=<[^>]*>,.* status=(\w+)")
    with open(log_path, errors="replace") as f:
        for line in f:
            m = rx.search(line)
            if m:
                counts[m.group(2)] += 1
    return counts


# -------------------------------------------------------------------- table


def table(r):
    """The result table (Markdown) of one run."""
    rows = [("messages injected (smtp / sendmail)", "%d / %d" % (r["injected"]["smtp"],
                                                              r["injected"]["sendmail"])),
            ("messages accepted (smtp / sendmail)", "%d / %d" % (r["accepted"]["smtp"],
                                                              r["accepted"]["sendmail"])),
            ("not accepted (smtp refused or cut off / sendmail non-zero exit)",
             "%d / %d" % (r["injected"]["smtp"] - r["accepted"]["smtp"],
                          r["injected"]["sendmail"] - r["accepted"]["sendmail"])),
            ("accepted recipients (message, recipient pairs)", r["check"]["accepted_pairs"]),
            ("delivered (at a peer or in a Maildir)", r["check"]["delivered_pairs"]),
            ("bounced, DSN found at the sender", r["check"]["bounced_pairs"]),
            ("**lost**", "**%d**" % r["check"]["lost_pairs"]),
            ("duplicates (pairs delivered twice or more / extra copies)",
             "%d / %d" % (r["check"]["duplicate_pairs"], r["check"]["duplicate_copies"])),
            ("delivered although not accepted (session cut after the commit)",
             r["check"]["unaccepted_delivered_pairs"]),
            ("DSNs read (local Maildir / peer)", "%d / %d" % (r["check"]["dsns"].get("local", 0),
                                                              r["check"]["dsns"].get("peer", 0))),
            ("kills (kill -9) by daemon", ", ".join("%s %d" % kv for kv in
                                                     sorted(r["kills"].items())) or "none"),
            ("master restarts by `onehop start`", r["master_restarts"]),
            ("chaos rounds without a kill (every daemon at its exit limit)", r["chaos_throttled"]),
            ("restarts by the master, per daemon (at the end)",
             ", ".join("%s %s" % kv for kv in sorted(r["restarts"].items()))),
            ("daemons in a crash loop", len(r["crash_loops"])),
            ("queue drained (seconds after the faults were removed)",
             "yes (%.0f s)" % r["drain_seconds"] if r["drained"] else "**no** (%s)" % r["qstat"]),
            ("sanitizer reports", r["sanitizer_reports"]),
            ("faults met (peers / world)", ", ".join("%s %d" % (k[1], v) for k, v in
                                                      sorted(r["faults"].items()))),
            ]
    text = ["| %s | %s |" % row for row in [("", r["label"] or "soak")]]
    text.append("|---|---|")
    text += ["| %s | %s |" % row for row in rows]
    if r["pflogsumm"] is not None:
        text.append("")
        text.append("pflogsumm --syslog-name=onehop over the run's log, beside the soak's "
                    "counts and onehop's own status= lines:")
        text.append("")
        text.append("| | pflogsumm | the soak / onehop's log |")
        text.append("|---|---|---|")
        p, lc = r["pflogsumm"], r["log_status"]
        text.append("| received | %s | %d accepted messages |" % (
            p.get("received"), r["accepted"]["smtp"] + r["accepted"]["sendmail"]))
        text.append("| delivered | %s | %d status=sent lines (%d pairs delivered) |" % (
            p.get("delivered"), lc.get("sent", 0), r["check"]["delivered_pairs"]))
        text.append("| deferred | %s (%s deferrals) | %d status=deferred lines |" % (
            p.get("deferred"), p.get("deferrals", 0), lc.get("deferred", 0)))
        text.append("| bounced | %s | %d status=bounced lines (%d pairs bounced) |" % (
            p.get("bounced"), lc.get("bounced", 0), r["check"]["bounced_pairs"]))
    return "\n".join(text)


# --------------------------------------------------------------------- main


def _interrupted(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    args = parse_args()
    work = Path(args.work).resolve()
    bin_dir = Path(args.bin).resolve()
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    if os.geteuid() != 0:
        print("soak: must run as root (SPEC 7 accounts)", file=sys.stderr)
        return 2
    started_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    progress_log = open(work / "progress.log", "a")

    def out(text):
        line = "soak: %s" % text
        print(line, flush=True)
        progress_log.write(line + "\n")
        progress_log.flush()

    # aiosmtpd logs each line a peer did not understand (the rest of a
    # message after a drop mid-DATA): not the soak's output
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    base = os.environ.get("ONEHOP_TEST_ACCOUNTS", "ohsoak")
    accounts, drop_accounts = make_accounts(base)
    world = World(args.seed, args.port_base + 1, args.port_base + 2).start()
    env = environment(work)
    onehop = run_onehop(bin_dir, CONFIG_DIR, env)
    os.environ.update({k: env[k] for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS")})
    result = {"label": args.label, "started": started_at, "seconds": args.seconds,
              "bin": str(bin_dir)}
    try:
        make_instance(args, work, bin_dir, accounts, world)
        r = onehop("start", timeout=90)
        if r.returncode != 0:
            out("onehop start failed: %s %s" % (r.stdout, r.stderr))
            return 2
        out("started: %s, %d messages over %.0f s, seed %r" % (bin_dir, args.messages,
                                                               args.seconds, args.seed))
        run_id = re.sub(r"[^A-Za-z0-9]+", "-", args.label or "soak").strip("-").lower()
        injectors = Injectors(run_id or "soak", args.seed, bin_dir, CONFIG_DIR,
                              ("127.0.0.1", args.port_base), work / "accepted.jsonl",
                              args.messages, args.seconds).start()
        chaos = Chaos(onehop, args.seed, work / "chaos.log", args.seconds * 0.5,
                      work / "log" / "maillog").start()
        t0 = time.monotonic()
        next_report = 60
        while injectors.alive() and time.monotonic() - t0 < args.seconds + 600:
            time.sleep(5)
            if time.monotonic() - t0 >= next_report:
                progress(onehop, injectors, t0, out)
                next_report += 60
        chaos.finish()
        injectors.finish(60)
        progress(onehop, injectors, t0, out)
        out("chaos over (%s); removing the faults" % dict(chaos.kills))
        world.heal()
        running = ensure_running(onehop, out)
        if crash_loops(work / "log" / "maillog"):
            # as an operator would, after `onehop status` shows it
            r = onehop("reload", timeout=90)
            out("a daemon is in a crash loop: onehop reload: exit %d %s" % (
                r.returncode, r.stderr.strip()[:200]))
        drained, qstat, drain_s = drain(onehop, args.drain_seconds, out) if running else (
            False, {}, 0)
        status, loops = final_status(onehop, work / "log" / "maillog")
        r = onehop("stop", timeout=90)
        out("onehop stop: exit %d %s" % (r.returncode, r.stderr.strip()[:200]))
        check.save_peer_messages(work / "peers.jsonl",
                                 [m for peer in world.all_peers() for m in peer.received()])
        figures = check.check_run(work)
        files, san_lines = sanitizer_reports(work)
        result.update({
            "injected": {p: sum(injectors.count(p, o) for o in ("accepted", "failed", "refused"))
                         for p in ("smtp", "sendmail")},
            "accepted": {p: injectors.count(p, "accepted") for p in ("smtp", "sendmail")},
            "errors": {"%s: %s" % k: v for k, v in injectors.errors.items()},
            "check": figures,
            "kills": dict(chaos.kills),
            "master_restarts": chaos.master_restarts,
            "chaos_throttled": chaos.throttled,
            "chaos_failures": chaos.failures,
            "restarts": {p.get("name"): p.get("restarts") for p in status.get("processes", [])},
            "crash_loops": loops,
            "drained": drained, "qstat": qstat, "drain_seconds": drain_s,
            "sanitizer_reports": len(files) + len(san_lines),
            "sanitizer_files": [str(f) for f in files], "sanitizer_lines": san_lines[:20],
            "faults": {k: v for k, v in world.faults.counts.items()},
            "pflogsumm": pflogsumm(work / "log" / "maillog"),
            "log_status": dict(log_counts(work / "log" / "maillog")),
        })
    finally:
        onehop("stop", timeout=90)
        world.stop()
        drop_accounts()
    if "check" not in result:
        out("the soak did not reach its checks")
        return 2
    md = table(result)
    result["faults"] = {"%s: %s" % k: v for k, v in result["faults"].items()}
    (work / "result.md").write_text(md + "\n")
    (work / "result.json").write_text(json.dumps(result, indent=1, default=list) + "\n")
    print(md)
    for what in ("errors", "chaos_failures", "crash_loops", "sanitizer_files"):
        if result.get(what):
            out("%s: %s" % (what, json.dumps(result[what], default=list)[:2000]))
    if figures["lost"]:
        out("LOST (first 20): %s" % figures["lost"][:20])
    bad = (figures["lost_pairs"] or result["sanitizer_reports"] or loops or not drained
           or chaos.failures)
    out("result: %s (%s)" % ("FAIL" if bad else "pass", work))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
