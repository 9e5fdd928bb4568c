"""`onehop metrics` and metrics_file (SPEC 1, 3; issue 14 item 4): the
Prometheus text exposition format (0.0.4) gathered by the master from the
running daemons of an `onehop start` instance.

Mail goes in by sendmail and by SMTP, out to an aiosmtpd sink found by DNS
MX, to a peer answering 451 to RCPT, and to a local Maildir. The output is
read with a strict parser written here: every line a comment (# HELP /
# TYPE) or `name{labels} value`, every sample's family typed once before
its samples, counters ending in _total, histogram buckets cumulative up to
le="+Inf" equal to _count. The counts must equal the SPEC 8 lines of the
log, counters never go down between scrapes, a daemon that does not answer
is skipped within the bound and counted, a restart is counted, and
metrics_file is written and replaced atomically (a new inode each time,
never a partial file).
"""

import math
import os
import re
import signal
import time

from test_master import master_bin  # noqa: F401 (a fixture)
from test_router import SENDER, send, wait_until
from test_router_local import local_instance, pid_of

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
HELP_RE = re.compile(r"^# HELP (%s) (.*)$" % NAME)
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
SAMPLE_RE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)$" % NAME)
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def parse_labels(text, line):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        assert m, "bad labels in %r" % line
        name = m.group(1)
        assert name not in labels, "label %s twice in %r" % (name, line)
        labels[name] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1),
                              m.group(2))
        pos = m.end()
        assert m.group(3) == "," or pos == len(text), line
    return labels


def parse_value(text, line):
    assert re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]Inf|NaN", text), \
        "bad value in %r" % line
    return float(text)


def family_of(name, types):
    if name in types:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return base
    raise AssertionError("sample %s has no # TYPE before it" % name)


def parse_exposition(text):
    """{family: {"type", "help", "samples": {(name, labels tuple): value}}}, strictly."""
    assert text.endswith("\n"), "the text ends with a newline"
    families, types, seen_samples = {}, {}, set()
    for line in text.split("\n")[:-1]:
        assert line, "an empty line"
        if line.startswith("#"):
            m = HELP_RE.match(line) or TYPE_RE.match(line)
            assert m, "a comment that is neither HELP nor TYPE: %r" % line
            fam = families.setdefault(m.group(1), {"type": None, "help": None, "samples": {}})
            key = "help" if line.startswith("# HELP") else "type"
            assert fam[key] is None, "second %s line for %s" % (key, m.group(1))
            assert not fam["samples"], "%s after the samples of %s" % (key, m.group(1))
            fam[key] = m.group(2)
            if key == "type":
                types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels = m.group(1), parse_labels(m.group(2) or "", line)
        value = parse_value(m.group(3), line)
        fam = family_of(name, types)
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen_samples, "sample %r twice" % (key,)
        seen_samples.add(key)
        families[fam]["samples"][key] = value
    for name, fam in families.items():
        assert fam["type"] is not None and fam["help"] is not None, name
        assert name.startswith("onehop_"), name
        if fam["type"] == "counter":
            assert name.endswith("_total"), "counter %s does not end in _total" % name
            assert all(v >= 0 for v in fam["samples"].values()), name
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return families


def check_histogram(name, samples):
    series = {}
    for (sample, labels), value in samples.items():
        rest = tuple(l for l in labels if l[0] != "le")
        entry = series.setdefault(rest, {"buckets": [], "count": None, "sum": None})
        if sample == name + "_bucket":
            le = dict(labels)["le"]
            entry["buckets"].append((math.inf if le == "+Inf" else float(le), value))
        elif sample == name + "_count":
            entry["count"] = value
        else:
            entry["sum"] = value
    for rest, entry in series.items():
        buckets = sorted(entry["buckets"])
        assert buckets and buckets[-1][0] == math.inf, "%s%s: no +Inf bucket" % (name, rest)
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), "%s%s: buckets not cumulative" % (name, rest)
        assert entry["count"] == counts[-1] and entry["sum"] is not None, (name, rest)


def value(families, family, sample=None, **labels):
    """One sample's value (0 when the series is absent)."""
    key = (sample or family, tuple(sorted(labels.items())))
    return families[family]["samples"].get(key, 0)


def scrape(mta):
    r = mta.cmd("metrics")
    assert r.rc == 0, r
    return parse_exposition(r.out)


def status_lines(mta, service, status):
    return len([l for l in mta.deliveries(status=status) if l.service == service])


def mail_instance(onehop, master_bin, dns, smtp_peers, **conf):
    sink = smtp_peers.start("mx.b.test")
    temp = smtp_peers.start("mx.c.test", rcpt="451 4.7.1 try again later")
    dns.mx_to("b.test", sink.ip)
    dns.mx_to("c.test", temp.ip)
    # one attempt of the deferred mail within the test: its count is exact
    mta = local_instance(onehop, master_bin, retry_min="300s", retry_max="600s", **conf)
    return mta, sink


def test_metrics_agree_with_the_log_and_only_grow(onehop, master_bin, dns, smtp_peers):
    mta, sink = mail_instance(onehop, master_bin, dns, smtp_peers)
    mta.start()
    for i in range(3):
        send(mta, ["bob@b.test"], "tok-m-%d" % i)
    send(mta, ["carol@c.test"], "tok-m-deferred")
    send(mta, ["dave@local.test"], "tok-m-local")
    mta.submit(SENDER, ["bob@b.test"], b"Subject: by smtp\r\n\r\nbody of tok-m-smtp\r\n")
    mta.wait_delivery("bob@b.test", "sent", n=4, timeout=30)
    mta.wait_delivery("carol@c.test", "deferred", n=1, timeout=30)
    mta.wait_delivery("dave@local.test", "sent", n=1, timeout=30)
    first = scrape(mta)

    # the SPEC 8 lines and the counters say the same
    assert value(first, "onehop_delivered_total", transport="remote") == \
        status_lines(mta, "remote", "sent") == 4
    assert value(first, "onehop_deferred_total", transport="remote") == \
        status_lines(mta, "remote", "deferred") == 1
    assert value(first, "onehop_delivered_total", transport="local") == \
        status_lines(mta, "local", "sent") == 1
    assert value(first, "onehop_bounced_total", transport="remote") == 0
    assert value(first, "onehop_messages_received_total", source="smtp") == 1
    assert value(first, "onehop_messages_received_total", source="sendmail") == 5
    assert value(first, "onehop_messages_received_total", source="bounce") == 0
    assert value(first, "onehop_smtpd_messages_total") == 1
    assert value(first, "onehop_smtpd_connections_total") == 1
    delay = "onehop_delivery_delay_seconds"
    assert value(first, delay, delay + "_count", transport="remote") == 4
    # the queue: the deferred message waits, and it is the oldest
    assert value(first, "onehop_queue_messages", state="deferred") == 1
    assert value(first, "onehop_queue_oldest_message_age_seconds") >= 0
    # DNS: the MX of b.test and c.test were asked upstream, once each at least
    assert value(first, "onehop_dns_requests_total", type="route") >= 2
    assert value(first, "onehop_dns_cache_misses_total") >= 2
    assert value(first, "onehop_dns_upstream_queries_total") >= 2
    # connections by destination, and a histogram of the attempts
    assert value(first, "onehop_remote_connections_total", destination="b.test") >= 1
    assert value(first, "onehop_remote_attempt_seconds", "onehop_remote_attempt_seconds_count",
                 destination="b.test") >= 1
    # the master: every process up, nothing restarted, nothing skipped
    for name in ("master", "cleaner", "dnscache", "router", "remote", "local"):
        assert value(first, "onehop_up", daemon=name) == 1, name
    assert all(v == 0 for v in first["onehop_daemon_restarts_total"]["samples"].values())
    assert all(v == 0 for v in first["onehop_metrics_scrape_errors_total"]["samples"].values())

    send(mta, ["bob@b.test"], "tok-m-more")
    mta.wait_delivery("bob@b.test", "sent", n=5, timeout=30)
    second = scrape(mta)
    for name, fam in first.items():
        if fam["type"] not in ("counter", "histogram"):
            continue
        for key, before in fam["samples"].items():
            after = second[name]["samples"].get(key)
            assert after is not None and after >= before, "%s %s: %s then %s" % (
                name, key, before, after)
    assert value(second, "onehop_delivered_total", transport="remote") == 5
    assert value(second, "onehop_messages_received_total", source="sendmail") == 6
    assert value(second, "onehop_dns_cache_hits_total") >= 1  # b.test again, from the cache


def test_a_daemon_that_does_not_answer_is_skipped_and_counted(onehop, master_bin, dns,
                                                              smtp_peers):
    mta, _ = mail_instance(onehop, master_bin, dns, smtp_peers)
    mta.start()
    pid = pid_of(mta, "dnscache")
    os.kill(pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        families = scrape(mta)
        took = time.monotonic() - began
    finally:
        os.kill(pid, signal.SIGCONT)
    assert 0.9 <= took < 5, took
    assert value(families, "onehop_metrics_scrape_errors_total", daemon="dnscache") == 1
    assert value(families, "onehop_metrics_scrape_errors_total", daemon="router") == 0
    assert "onehop_dns_cache_hits_total" not in families
    assert "onehop_delivered_total" in families
    later = scrape(mta)
    assert "onehop_dns_cache_hits_total" in later
    assert value(later, "onehop_metrics_scrape_errors_total", daemon="dnscache") == 1


def test_a_restart_is_counted_and_a_stopped_instance_refused(onehop, master_bin, dns,
                                                             smtp_peers):
    mta, _ = mail_instance(onehop, master_bin, dns, smtp_peers)
    mta.start()
    old = pid_of(mta, "remote")
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: value(scrape(mta), "onehop_up", daemon="remote") == 1 and
               pid_of(mta, "remote") not in (0, old), 20, "remote restarted", mta)
    families = scrape(mta)
    assert value(families, "onehop_daemon_restarts_total", daemon="remote") == 1
    assert value(families, "onehop_daemon_restarts_total", daemon="router") == 0
    mta.stop()
    r = mta.cmd("metrics")
    assert r.rc == 1 and "stopped" in r.err and r.out == "", r


def test_metrics_file_is_written_and_replaced_atomically(onehop, master_bin, dns, smtp_peers):
    mta, _ = mail_instance(onehop, master_bin, dns, smtp_peers,
                           metrics_file="textfile/onehop.prom")
    textfile = mta.path("textfile")
    textfile.mkdir()
    if mta.run_as:
        os.chown(textfile, mta.run_as.pw_uid, mta.run_as.pw_gid)
    path = textfile / "onehop.prom"
    mta.start()
    wait_until(path.exists, 10, "metrics_file written", mta)
    first = os.stat(path)
    families = parse_exposition(path.read_text())
    assert value(families, "onehop_up", daemon="router") == 1
    assert "onehop_dns_cache_hits_total" in families
    send(mta, ["bob@b.test"], "tok-file")
    mta.wait_delivery("bob@b.test", "sent", timeout=30)
    # replaced by a rename: a new inode, whole every time it is read meanwhile
    deadline = time.monotonic() + 25
    while os.stat(path).st_ino == first.st_ino:
        assert time.monotonic() < deadline, "metrics_file not replaced within 25 s"
        parse_exposition(path.read_text())
        time.sleep(0.2)
    families = parse_exposition(path.read_text())
    assert value(families, "onehop_delivered_total", transport="remote") == 1
    assert sorted(p.name for p in textfile.iterdir()) == ["onehop.prom"]  # no temp file left


def test_a_bounce_decided_by_the_router_and_its_dsn(onehop, master_bin, dns, smtp_peers):
    mta = local_instance(onehop, master_bin, routes="bad.test error:5.1.2 no such domain here\n")
    mta.start()
    r = mta.sendmail("-f", "dave@local.test", "eve@bad.test",
                     data=b"Subject: to nowhere\n\nbody of tok-bounce\n")
    assert r.rc == 0, r
    mta.wait_delivery("eve@bad.test", "bounced", timeout=30)
    mta.wait_delivery("dave@local.test", "sent", timeout=30)  # the DSN
    families = scrape(mta)
    assert value(families, "onehop_bounced_total", transport="none") == \
        status_lines(mta, "router", "bounced") == 1
    assert value(families, "onehop_messages_received_total", source="sendmail") == 1
    assert value(families, "onehop_messages_received_total", source="bounce") == 1
    assert value(families, "onehop_delivered_total", transport="local") == 1
