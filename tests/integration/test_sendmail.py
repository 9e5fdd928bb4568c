"""sendmail, mailq and newaliases (SPEC sections 1 and 2) against a stopped
instance: sendmail must queue while no daemon runs. What was queued is read
back with `onehop queue show --json` (envelope, headers) and, for the exact
bytes, from the queue file (queuefile.py).
"""

import os
import re

import pytest

from queuefile import stored_content

QUEUED_AS = re.compile(r"queued as ([0-9A-Z]{18})")
HEADERS = b"From: a@a.test\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-ID: <m1@a.test>\n"


@pytest.fixture
def mta(onehop):
    return onehop(conf={"myorigin": "origin.test"})


def queue_ids(mta):
    return {m["id"] for m in mta.queue()["messages"]}


def send(mta, *args, data=b""):
    """sendmail ARGS < data (without -v: sendmail execs onehop-queue);
    returns (Result, the id of the one message it queued, or None)."""
    before = queue_ids(mta)
    result = mta.sendmail(*args, data=data)
    new = queue_ids(mta) - before
    assert len(new) <= 1, new
    return result, new.pop() if new else None


def queued(mta, *args, data=b""):
    result, qid = send(mta, *args, data=data)
    assert result.rc == 0, result
    assert qid, result
    return qid


def content(mta, qid):
    return stored_content(mta.path("queue"), qid)


def envelope(mta, qid):
    show = mta.queue_show(qid)
    return show["sender"], [r["address"] for r in show["recipients"]]


def header_names(mta, qid):
    return [h["name"] for h in mta.queue_show(qid)["headers"]]


def assert_nothing_queued(mta):
    assert mta.queue()["messages"] == []


# ------------------------------------------------------------------ queueing


def test_queues_while_stopped_and_logs(mta):
    qid = queued(mta, "-f", "alice@a.test", "bob@b.test", data=HEADERS + b"\nhello\n")
    assert envelope(mta, qid) == ("alice@a.test", ["bob@b.test"])
    assert content(mta, qid) == HEADERS + b"\nhello\n"
    line = mta.wait_log(qid + ": from=<alice@a.test>")[0]
    assert line.fields["nrcpt"] == "1"


def test_lf_and_crlf_input_are_stored_alike(mta):
    lf = queued(mta, "bob@b.test", data=HEADERS + b"\nline 1\nline 2\n")
    crlf = queued(mta, "bob@b.test", data=HEADERS.replace(b"\n", b"\r\n") +
                  b"\r\nline 1\r\nline 2\r\n")
    assert content(mta, lf) == content(mta, crlf) == HEADERS + b"\nline 1\nline 2\n"


def test_never_cr_cr_lf(mta):
    qid = queued(mta, "bob@b.test", data=HEADERS + b"\r\nx\r\r\ny\r\r\r\n")
    stored = content(mta, qid)
    assert b"\r" not in stored
    assert stored.endswith(b"\nx\ny\n")


def test_last_line_without_newline_gets_one(mta):
    qid = queued(mta, "bob@b.test", data=HEADERS + b"\nno newline")
    assert content(mta, qid).endswith(b"\nno newline\n")


def test_lone_dot_ends_the_message(mta):
    qid = queued(mta, "bob@b.test", data=HEADERS + b"\nbefore\n.\nafter\n")
    assert content(mta, qid) == HEADERS + b"\nbefore\n"


@pytest.mark.parametrize("flag", ["-i", "-oi"])
def test_i_and_oi_keep_the_lone_dot(mta, flag):
    qid = queued(mta, flag, "bob@b.test", data=HEADERS + b"\nbefore\n.\nafter\n")
    assert content(mta, qid) == HEADERS + b"\nbefore\n.\nafter\n"


def test_no_dot_unstuffing(mta):
    qid = queued(mta, "bob@b.test", data=HEADERS + b"\n..\n.x\n")
    assert content(mta, qid).endswith(b"\n..\n.x\n")


def test_missing_headers_are_added(mta):
    qid = queued(mta, "-f", "alice@a.test", "-F", "Alice Example", "bob@b.test",
                 data=b"Subject: s\n\nbody\n")
    show = mta.queue_show(qid)
    fields = {h["name"]: h["value"] for h in show["headers"]}
    assert fields["From"] == "Alice Example <alice@a.test>"
    assert re.fullmatch(r"<\d{14}\.[0-9A-Za-z]+@mta\.onehop\.test>", fields["Message-ID"])
    assert re.fullmatch(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} [A-Z][a-z]{2} \d{4} "
                        r"\d\d:\d\d:\d\d [+-]\d{4}", fields["Date"])
    assert content(mta, qid).endswith(b"\n\nbody\n")


def test_present_headers_are_not_added_again(mta):
    qid = queued(mta, "bob@b.test", data=b"from: x@y.test\nDATE: d\nMessage-Id: <1@y>\n\nb\n")
    assert header_names(mta, qid) == ["from", "DATE", "Message-Id"]


def test_f_null_sender_and_from_header(mta):
    for sender in ("", "<>"):
        qid = queued(mta, "-f", sender, "bob@b.test", data=b"Subject: s\n\nb\n")
        assert envelope(mta, qid)[0] == ""
        fields = {h["name"]: h["value"] for h in mta.queue_show(qid)["headers"]}
        assert fields["From"] == "MAILER-DAEMON@mta.onehop.test"
    listing = mta.cmd("queue").out
    assert "MAILER-DAEMON" in listing


def test_r_sets_the_sender_and_attached_values_work(mta):
    qid = queued(mta, "-rcarol@c.test", "bob@b.test", data=HEADERS)
    assert envelope(mta, qid)[0] == "carol@c.test"
    qid = queued(mta, "-f<dave@d.test>", "bob@b.test", data=HEADERS)
    assert envelope(mta, qid)[0] == "dave@d.test"


def test_default_sender_is_the_login_at_myorigin(mta):
    import pwd
    qid = queued(mta, "bob@b.test", data=HEADERS)
    login = pwd.getpwuid(os.getuid()).pw_name
    assert envelope(mta, qid)[0] == "%s@origin.test" % login


def test_bare_recipients_get_myorigin_and_lists_are_split(mta):
    qid = queued(mta, "bob", "carol@c.test, Dan <dan@D.TEST>", "bob", data=HEADERS)
    assert envelope(mta, qid)[1] == ["bob@origin.test", "carol@c.test", "dan@d.test"]


def test_options_and_recipients_mix_and_double_dash(mta):
    qid = queued(mta, "bob@b.test", "-f", "alice@a.test", "--", "-x@b.test", data=HEADERS)
    assert envelope(mta, qid) == ("alice@a.test", ["bob@b.test", "-x@b.test"])


def test_name_environment_variable_gives_the_full_name(mta):
    result = mta.run("sendmail", "-v", "-f", "a@a.test", "bob@b.test", data=b"\nb\n",
                     env={"NAME": "Env Name"})
    qid = QUEUED_AS.search(result.err).group(1)
    fields = {h["name"]: h["value"] for h in mta.queue_show(qid)["headers"]}
    assert fields["From"] == "Env Name <a@a.test>"


def test_config_from_environment(mta):
    result = mta.run("sendmail", "-v", "bob@b.test", data=HEADERS, config=False,
                     env={"ONEHOP_CONFIG": str(mta.dir)})
    assert result.rc == 0, result
    assert len(mta.queue()["messages"]) == 1


# ------------------------------------------------------------------------ -t


def test_t_reads_to_cc_bcc_with_folding_groups_comments(mta):
    data = (b"From: a@a.test\n"
            b"To: Bob Smith <bob@b.test>, (a comment) carol@c.test,\n"
            b"   team: dan@d.test, \"Eve, E.\" <eve@e.test>;\n"
            b"Cc: frank@f.test (Frank (the) man)\n"
            b"Bcc: gina@g.test,\n\thank@h.test\n"
            b"Subject: s\n\nbody\nTo: not@n.test\n")
    qid = queued(mta, "-t", data=data)
    assert envelope(mta, qid)[1] == ["bob@b.test", "carol@c.test", "dan@d.test",
                                     "eve@e.test", "frank@f.test", "gina@g.test",
                                     "hank@h.test"]
    stored = content(mta, qid)
    assert b"Bcc" not in stored and b"gina" not in stored and b"hank" not in stored
    assert b"team: dan@d.test" in stored
    assert stored.endswith(b"\n\nbody\nTo: not@n.test\n")


def test_t_adds_command_line_recipients(mta):
    qid = queued(mta, "-t", "extra@x.test", data=b"To: bob@b.test\n\nb\n")
    assert sorted(envelope(mta, qid)[1]) == ["bob@b.test", "extra@x.test"]


def test_t_with_resent_fields_uses_them(mta):
    data = (b"To: old@o.test\nResent-From: r@r.test\nResent-To: new@n.test\n"
            b"Resent-Bcc: hidden@h.test\n\nb\n")
    qid = queued(mta, "-t", data=data)
    assert envelope(mta, qid)[1] == ["new@n.test", "hidden@h.test"]
    assert b"hidden" not in content(mta, qid)


def test_bcc_removed_without_t_too(mta):
    qid = queued(mta, "bob@b.test", data=HEADERS + b"Bcc: secret@s.test\n\nb\n")
    assert b"secret" not in content(mta, qid)
    assert envelope(mta, qid)[1] == ["bob@b.test"]


# -------------------------------------------------------------- exit status


def test_no_recipients_is_usage_64(mta):
    result = mta.sendmail(data=HEADERS)
    assert result.rc == 64
    assert "recipient" in result.err
    assert_nothing_queued(mta)


def test_t_without_recipient_fields_is_64(mta):
    result = mta.sendmail("-t", data=b"Subject: s\n\nb\n")
    assert result.rc == 64
    assert "no recipient addresses found in message header" in result.err
    assert_nothing_queued(mta)


@pytest.mark.parametrize("args,data", [
    (["Bob Smith"], HEADERS),
    (["bob@-bad-.test"], HEADERS),
    (["bob@b.test", "a" * 65 + "@b.test"], HEADERS),
    (["-t"], b"To: <bob@b.test\n\nb\n"),
    (["-t"], b"To: bob@\n\nb\n"),
    (["-f", "a b c", "bob@b.test"], HEADERS),
])
def test_bad_addresses_are_65(mta, args, data):
    result = mta.sendmail(*args, data=data)
    assert result.rc == 65, result
    assert "address" in result.err
    assert_nothing_queued(mta)


def test_nul_byte_is_65(mta):
    result = mta.sendmail("bob@b.test", data=HEADERS + b"\nab\0cd\n")
    assert result.rc == 65
    assert "NUL" in result.err
    assert_nothing_queued(mta)


def test_oversized_message_is_65(onehop):
    mta = onehop(conf={"message_size_limit": "2000"})
    result = mta.sendmail("bob@b.test", data=HEADERS + b"\n" + b"x" * 3000 + b"\n")
    assert result.rc == 65
    assert "message_size_limit" in result.err
    assert_nothing_queued(mta)
    ok = mta.sendmail("bob@b.test", data=HEADERS + b"\n" + b"x" * 1000 + b"\n")
    assert ok.rc == 0, ok


def test_unknown_option_is_64(mta):
    for args in (["-Z", "bob@b.test"], ["-bd"], ["-N", "sometimes", "bob@b.test"], ["-f"]):
        result = mta.sendmail(*args, data=HEADERS)
        assert result.rc == 64, (args, result)
        assert "usage:" in result.err
    assert_nothing_queued(mta)


def test_missing_onehop_queue_is_temporary_75(onehop, tmp_path):
    mta = onehop(conf={"daemon_dir": str(tmp_path)})
    result = mta.sendmail("bob@b.test", data=HEADERS)
    assert result.rc == 75
    assert "nothing was queued" in result.err
    assert_nothing_queued(mta)


def run_sendmail(mta, *args, data=b""):
    """sendmail -C DIR ARGS < data as a child of this test: (pid, rc, stderr)."""
    import subprocess
    argv = [str(mta.program("sendmail")), "-C", str(mta.dir)] + list(args)
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=mta.env(None), cwd=str(mta.dir))
    _, err = p.communicate(data, timeout=60)
    return p.pid, p.returncode, err.decode()


def test_sendmail_becomes_onehop_queue(mta):
    """Without -v, the process that commits the message is sendmail's own
    (execve: no second process, no waiting parent): the queue's log line
    carries sendmail's pid."""
    pid, rc, err = run_sendmail(mta, "-f", "alice@a.test", "bob@b.test", data=HEADERS + b"\nx\n")
    assert rc == 0, err
    (qid,) = queue_ids(mta)
    line = mta.wait_log(qid + ": from=<alice@a.test>")[0]
    assert (line.service, line.pid) == ("queue", pid)


def test_v_reports_the_queue_id_from_a_child_onehop_queue(mta):
    pid, rc, err = run_sendmail(mta, "-v", "-f", "alice@a.test", "bob@b.test",
                                data=HEADERS + b"\nx\n")
    assert rc == 0, err
    qid = QUEUED_AS.search(err).group(1)
    assert queue_ids(mta) == {qid}
    line = mta.wait_log(qid + ": from=<alice@a.test>")[0]
    assert line.service == "queue" and line.pid != pid


def test_queue_unavailable_is_75_with_the_reason(onehop, tmp_path):
    """onehop-queue refuses (its queue directory is a file): through the
    exec hand-over its exit status and its own reason reach the caller."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    mta = onehop(conf={"queue_dir": str(blocker)})
    for args in ([], ["-v"]):
        result = mta.sendmail(*args, "bob@b.test", data=HEADERS + b"\nx\n")
        assert result.rc == 75, (args, result)
        assert "onehop-queue:" in result.err and "queue unavailable" in result.err, result


def test_queue_writer_that_stops_reading_is_75_not_sigpipe(onehop, tmp_path):
    """A queue writer that exits without reading (here a stand-in that
    exits 75 at once) must not kill sendmail -v with SIGPIPE halfway
    through a large message: the caller gets 75 and a reason."""
    fake = tmp_path / "onehop-queue"
    fake.write_text("#!/bin/sh\nexit 75\n")
    fake.chmod(0o755)
    mta = onehop(conf={"daemon_dir": str(tmp_path)})
    big = HEADERS + b"\n" + (b"y" * 999 + b"\n") * 3000
    for args in (["-v"], []):
        result = mta.sendmail(*args, "bob@b.test", data=big)
        assert result.rc == 75, (args, result)
    assert "gave no answer" in mta.sendmail("-v", "bob@b.test", data=big).err


# ------------------------------------------------------------------ options


def test_ignored_options_are_accepted(mta):
    args = ["-oem", "-oee", "-oep", "-odb", "-odi", "-oQ/x", "-o", "A", "-B", "8BITMIME",
            "-h", "5", "-L", "tag", "-O", "x=y", "-R", "hdrs", "-V", "envid", "-X", "/dev/null",
            "-p", "local", "-G", "-U", "-m", "-n", "-bm", "-ti", "bob@b.test"]
    qid = queued(mta, *args, data=b"To: carol@c.test\n\n.\nkept\n")
    assert envelope(mta, qid)[1] == ["bob@b.test", "carol@c.test"]
    assert content(mta, qid).endswith(b"\n.\nkept\n")


def test_N_sets_the_notify_of_every_recipient(mta):
    qid = queued(mta, "-N", "success,Failure", "bob@b.test", "carol@c.test", data=HEADERS)
    assert [r["notify"] for r in mta.queue_show(qid)["recipients"]] == ["SUCCESS,FAILURE"] * 2
    qid = queued(mta, "-Nnever", "bob@b.test", data=HEADERS)
    assert mta.queue_show(qid)["recipients"][0]["notify"] == "NEVER"


def test_bs_speaks_smtp_and_queues_while_stopped(mta):
    dialogue = (b"HELO me\r\nMAIL FROM:<u@origin.test>\r\nRCPT TO:<bob@b.test>\r\nDATA\r\n"
                b"Subject: bs\r\n\r\nby -bs\r\n.\r\nQUIT\r\n")
    result = mta.sendmail("-bs", data=dialogue)
    assert result.rc == 0, result
    lines = result.out.splitlines()
    assert lines[0].startswith("220 ") and lines[-1].startswith("221 "), lines
    qid = [l for l in lines if "queued as" in l][0].split()[-1]
    assert envelope(mta, qid) == ("u@origin.test", ["bob@b.test"])


def test_q_while_stopped_says_so_69(mta):
    queued(mta, "bob@b.test", data=HEADERS)
    for args in (["-q"], ["-q30m"], ["-qRb.test"]):
        result = mta.sendmail(*args)
        assert result.rc == 69, result
        assert "onehop is stopped" in result.err
    assert len(mta.queue()["messages"]) == 1


# --------------------------------------------------------- mailq, newaliases


def test_mailq_is_sendmail_bp_is_onehop_queue(mta):
    empty = mta.run("mailq")
    assert empty.rc == 0 and empty.out == "Mail queue is empty\n"
    queued(mta, "-f", "alice@a.test", "bob@b.test", data=HEADERS)
    queued(mta, "-f", "", "carol@c.test", "dan@d.test", data=HEADERS)
    mailq, bp, listing = mta.run("mailq"), mta.sendmail("-bp"), mta.cmd("queue")
    assert mailq.rc == bp.rc == listing.rc == 0
    assert mailq.out == bp.out == listing.out
    assert "2 Requests." in mailq.out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run mailq as another user")
def test_mailq_of_a_user_who_cannot_read_the_queue_is_77(tmp_path):
    """The queue is 0700 (its owner's and root's); an ordinary user's mailq
    hands over to onehop-queue --list, which here is not set-uid (see
    test_setuid_install.py for the installed case), so it says why it cannot
    list the queue instead of a bare failure."""
    import pwd
    import shutil
    import subprocess
    import tempfile
    import reachable
    nobody = pwd.getpwnam("nobody")
    top = tempfile.mkdtemp(prefix="onehop-mailq-", dir="/tmp")
    try:
        # copies nobody can reach (reachable.py: the clone may sit in a 0700 directory)
        bin_dir = reachable.copy_programs(top, ["sendmail", "mailq", "onehop-queue"])
        with open(os.path.join(top, "onehop.conf"), "w") as f:
            f.write("queue_dir = %s/queue\nrun_dir = %s/run\nlog = %s/maillog\ndaemon_dir = %s\n"
                    % (top, top, top, bin_dir))
        os.mkdir(os.path.join(top, "run"))
        sendmail = str(bin_dir / "sendmail")
        p = subprocess.run([sendmail, "-C", top, "bob@b.test"], input=HEADERS + b"\nx\n",
                           timeout=60)
        assert p.returncode == 0
        # queue_dir 2755, its places 2750 (queue/queue_modes.h): others see no message
        assert os.stat(os.path.join(top, "queue")).st_mode & 0o7777 == 0o2755
        assert os.stat(os.path.join(top, "queue", "incoming")).st_mode & 0o007 == 0

        def as_nobody():
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        p = subprocess.run([str(bin_dir / "mailq"), "-C", top], capture_output=True,
                           preexec_fn=as_nobody, env={"PATH": "/usr/bin:/bin"}, timeout=60)
        assert p.returncode == 77, p
        assert b"Permission denied" in p.stderr and b"not set-uid" in p.stderr
    finally:
        shutil.rmtree(top)


def test_newaliases_accepts_a_good_file(onehop):
    mta = onehop(aliases="postmaster: root\nteam: alice, bob@b.test\n")
    for program, args in (("newaliases", []), ("sendmail", ["-bi"]), ("sendmail", ["-I"])):
        result = mta.run(program, *args)
        assert result.rc == 0, (program, args, result)
        # validated only, and said so: no router runs (test_control.py: the reload)
        assert result.err == ("newaliases: aliases are valid; onehop is stopped: the router "
                              "reads them when it starts\n"), result.err


def test_newaliases_reports_file_and_line(onehop):
    mta = onehop(aliases="postmaster: root\nbroken line\nx: a@@b\n")
    result = mta.run("newaliases")
    assert result.rc == 1
    path = str(mta.path("aliases"))
    lines = [l for l in result.err.splitlines() if l.startswith(path + ":")]
    assert [l.split(":")[1] for l in lines] == ["2", "3"], result.err
