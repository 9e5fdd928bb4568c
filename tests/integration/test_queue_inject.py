"""onehop-queue one-shot mode, driven directly (queue/inject_proto.h): what
is queued and how, and every refusal: a clear error, exit 65 (permanent) or
75 (temporary), and nothing queued, not even a tmp/ file.
"""

import os
import struct
import subprocess

import pytest

import injproto as ip


def queue_dir(conf):
    return conf / "queue"


def assert_nothing_queued(conf):
    assert ip.queue_files(queue_dir(conf)) == []
    assert ip.leftovers(queue_dir(conf)) == []


def log_lines(conf):
    path = conf / "maillog"
    return path.read_text().splitlines() if path.exists() else []


def test_queues_message_and_logs_it(qbin, conf):
    data = b"Subject: hi\r\nFrom: a@a.test\r\n\r\nline one\r\nbare lf\nno end"
    rc, replies, err = ip.inject(qbin, conf, sender="Alice@A.TEST",
                                 rcpts=["bob@b.test", "carol@c.test"], data=data,
                                 attrs={"client": "x.test[127.0.0.9]"})
    assert (rc, err) == (0, "")
    assert len(replies) == 1 and replies[0][:2] == (ip.OK, 1)
    qid = replies[0][2]
    msgs = ip.list_queue(queue_dir(conf))
    assert list(msgs) == [qid]
    m = msgs[qid]
    assert m["content"] == b"Subject: hi\nFrom: a@a.test\n\nline one\nbare lf\nno end\n"
    assert m["sender"] == "Alice@a.test"          # domain lower-cased, local part kept
    assert m["rcpts"] == ["bob@b.test", "carol@c.test"]
    assert m["attrs"]["client"] == "x.test[127.0.0.9]"
    assert m["attrs"]["uid"] == str(os.getuid())
    lines = [l for l in log_lines(conf) if "onehop/queue[" in l and qid in l]
    assert len(lines) == 1
    assert lines[0].endswith("%s: from=<Alice@a.test>, size=%d, nrcpt=2" % (qid, len(m["content"])))
    assert ip.leftovers(queue_dir(conf)) == []


def test_null_sender_and_empty_message(qbin, conf):
    rc, replies, _ = ip.inject(qbin, conf, sender="", data=b"")
    assert rc == 0
    m = ip.list_queue(queue_dir(conf))[replies[0][2]]
    assert (m["sender"], m["size"]) == ("", 0)


def test_ids_sort_by_arrival(qbin, conf):
    ids = [ip.inject(qbin, conf)[1][0][2] for _ in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5


BAD_ADDRESSES = [
    ("rcpt", "bad address", "5.1.3"),
    ("rcpt", "user", "5.1.3"),             # bare: the front end must qualify it
    ("rcpt", "a@", "5.1.3"),
    ("rcpt", "@b.test", "5.1.3"),
    ("rcpt", "a@b..test", "5.1.3"),
    ("rcpt", "a@b.test\r\nRCPT TO:<x@y>", "5.1.3"),
    ("rcpt", "x" * 65 + "@b.test", "5.1.3"),
    ("sender", "not valid@", "5.1.7"),
    ("sender", "a@-b.test", "5.1.7"),
]


@pytest.mark.parametrize("where,address,code", BAD_ADDRESSES)
def test_invalid_address_refused(qbin, conf, where, address, code):
    kwargs = {"rcpts": [address]} if where == "rcpt" else {"sender": address}
    rc, replies, err = ip.inject(qbin, conf, **kwargs)
    assert rc == ip.EX_DATAERR
    assert replies[0][0] == ip.FAIL and replies[0][2:4] == (ip.EX_DATAERR, code)
    assert "invalid %s address" % ("recipient" if where == "rcpt" else "sender") in err
    assert_nothing_queued(conf)


def test_nul_byte_refused(qbin, conf):
    rc, replies, err = ip.inject(qbin, conf, data=b"Subject: x\n\nab\0cd\n")
    assert rc == ip.EX_DATAERR and "NUL" in err
    assert replies[0][3] == "5.6.0"
    assert_nothing_queued(conf)


def test_ten_megabyte_line_refused(qbin, conf):
    rc, replies, err = ip.inject(qbin, conf, data=b"Subject: x\n\n" + b"y" * (10 << 20) + b"\n")
    assert rc == ip.EX_DATAERR and "line longer" in err
    assert_nothing_queued(conf)


def test_hundred_thousand_recipients_refused(qbin, conf):
    rcpts = ["r%d@b.test" % i for i in range(100000)]
    rc, replies, err = ip.inject(qbin, conf, rcpts=rcpts, timeout=120)
    assert rc == ip.EX_DATAERR and "too many recipients" in err
    assert replies[0][3] == "5.5.3"
    assert_nothing_queued(conf)


def test_ten_thousand_recipients_accepted(qbin, conf):
    rcpts = ["r%d@b.test" % i for i in range(10000)]
    rc, replies, _ = ip.inject(qbin, conf, rcpts=rcpts, timeout=120)
    assert rc == 0
    assert ip.list_queue(queue_dir(conf))[replies[0][2]]["rcpts"] == rcpts


def test_oversized_message_refused(qbin, tmp_path):
    conf = ip.make_config(tmp_path / "c", message_size_limit=10000)
    rc, replies, err = ip.inject(qbin, conf, data=b"Subject: x\n\n" + b"z" * 10000)
    assert rc == ip.EX_DATAERR and replies[0][3] == "5.3.4"
    assert "size" in err
    assert_nothing_queued(conf)
    rc, _, _ = ip.inject(qbin, conf, data=b"Subject: x\n\n" + b"z" * 9000)
    assert rc == 0


def test_too_many_header_fields_refused(qbin, conf):
    data = b"".join(b"X-H%d: v\n" % i for i in range(1001)) + b"\nbody\n"
    rc, replies, err = ip.inject(qbin, conf, data=data)
    assert rc == ip.EX_DATAERR and "header fields" in err
    assert_nothing_queued(conf)
    # a body of many "a: b" lines after the empty line is not a header
    rc, _, _ = ip.inject(qbin, conf, data=b"Subject: x\n\n" + b"a: b\n" * 5000)
    assert rc == 0


def test_no_recipient_refused(qbin, conf):
    rc, replies, err = ip.inject(qbin, conf, rcpts=[])
    assert rc == ip.EX_DATAERR and replies[0][3] == "5.5.1"
    assert_nothing_queued(conf)


def test_client_may_not_forge_uid(qbin, conf):
    rc, replies, _ = ip.inject(qbin, conf, attrs={"uid": "0"})
    assert rc == ip.EX_DATAERR and replies[0][3] == "5.5.4"
    assert_nothing_queued(conf)


def test_input_ending_early_is_temporary(qbin, conf):
    recs = ip.message_records(1, "a@a.test", ["b@b.test"], b"Subject: x\n\nhi\n")
    cut = recs[:-len(ip.record(ip.END, 1))]      # no END
    rc, replies, err = ip.run_oneshot(qbin, conf, cut)
    assert rc == ip.EX_TEMPFAIL and replies == [] and "nothing queued" in err
    rc, _, _ = ip.run_oneshot(qbin, conf, recs[:len(recs) - 3])  # inside a record
    assert rc == ip.EX_TEMPFAIL
    assert_nothing_queued(conf)


@pytest.mark.parametrize("garbage", [
    b"\x00\x00\x00\x02xx",                                  # record shorter than its header
    struct.pack(">IHH", 8, 99, 0),                          # unknown type
    ip.record(ip.RCPT, 1, "b@b.test", "", ""),               # not BEGIN first
    ip.record(ip.BEGIN, 1, "a@a.test") + ip.record(ip.BEGIN, 2, "a@a.test"),
    ip.record(ip.BEGIN, 1, "a@a.test") + ip.record(ip.DATA, 1, "text instead of bytes"),
])
def test_protocol_violation_exits_70(qbin, conf, garbage):
    rc, replies, err = ip.run_oneshot(qbin, conf, garbage)
    assert rc == ip.EX_SOFTWARE and "protocol error" in err
    assert_nothing_queued(conf)


def test_queue_unavailable_is_temporary(qbin, tmp_path):
    conf = ip.make_config(tmp_path / "c")
    (conf / "queue").write_text("a file where the queue directory should be")
    rc, replies, err = ip.inject(qbin, conf)
    assert rc == ip.EX_TEMPFAIL and replies[0][3].startswith("4.")
    assert "queue unavailable" in err


def test_missing_config_directory_is_temporary(qbin, tmp_path):
    rc, _, err = ip.inject(qbin, tmp_path / "nowhere")
    assert rc == ip.EX_TEMPFAIL and "configuration directory" in err


def test_bad_usage_exits_64(qbin):
    p = subprocess.run([str(qbin), "--bogus"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == ip.EX_USAGE and b"usage" in p.stderr


def test_environment_and_cwd_are_not_trusted(qbin, conf, tmp_path):
    """A relative queue_dir is relative to the config dir, never the cwd;
    hostile environment variables change nothing."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    recs = ip.message_records(1, "a@a.test", ["b@b.test"], b"Subject: x\n\nhi\n")
    p = subprocess.run([str(qbin), "-C", str(conf)], input=recs, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, cwd=str(elsewhere), timeout=30,
                       env={"PATH": "/nonexistent", "ONEHOP_CONFIG": "/nonexistent",
                            "TMPDIR": str(elsewhere), "MALLOC_CHECK_": "3"})
    assert p.returncode == 0
    assert list(elsewhere.iterdir()) == []
    assert len(ip.list_queue(queue_dir(conf))) == 1


def test_recover_mode_reports_counts(qbin, conf):
    assert ip.inject(qbin, conf)[0] == 0
    stray = queue_dir(conf) / "tmp" / "0PKX3B2Q7ZM012KG"
    stray.write_bytes(b"half a message")
    p = subprocess.run([str(qbin), "-C", str(conf), "--recover"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0
    assert b"tmp_removed=1 " in p.stdout
    assert not stray.exists()
    assert len(ip.list_queue(queue_dir(conf))) == 1
