"""docs/postfix-switch.md (issue 14 item 7) says only what onehop does:
every onehop key and command in its tables exists and works as written.

The page's tables are read as the administrator reads them: in the
settings table, each `key = value` of the onehop column is checked by
`onehop check` on a configuration directory holding that line alone (and
each `routes: LINE` and `aliases: LINE` in its file); in the commands
table, each onehop command names a command and options of `onehop --help`
(sendmail options: of sendmail(1)), and the read-only ones are run on a
started instance and must exit 0. The page must also be linked from README
and INSTALL. A row whose onehop cell says "none" is a missing equivalent
and is not checked; a table without any checked row fails (the parser
would have lost its way).
"""

import re
import subprocess
from pathlib import Path

import pytest

from fixtures.paths import onehop_bin
from test_master import master_bin, new_instance  # noqa: F401 (master_bin: a fixture)

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "postfix-switch.md"
CODE = re.compile(r"`([^`]+)`")
# commands that change nothing: run on a started instance (IDs and
# addresses of the page's examples are not the instance's)
READ_ONLY = ("onehop status", "onehop check", "onehop queue", "onehop queue --json",
             "onehop qstat", "onehop qshape deferred", "onehop metrics", "onehop flush",
             "onehop flush @DOMAIN", "onehop route user@example.com", "mailq")


def tables(heading):
    """Rows (lists of cells) of the table under '## heading'."""
    text = PAGE.read_text()
    section = text.split("\n## " + heading, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= set("|-"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append(cells)
    assert rows, "no table under %r" % heading
    return rows[1:]  # the header row


def setting_lines():
    """(file, text) of each onehop cell of the settings table: its lines
    together (smtpd_tls_cert goes with smtpd_tls_key)."""
    out = []
    for cells in tables("Settings: main.cf and onehop.conf"):
        onehop = cells[1]
        if onehop == "none":
            continue
        prefix = re.match(r"(routes|aliases): ", onehop)
        codes = CODE.findall(onehop)
        if not prefix and not all("=" in c for c in codes):
            raise AssertionError("settings row with an onehop cell that is not a key or "
                                 "a file line: %r" % cells)
        out.append((prefix.group(1) if prefix else "onehop.conf", "\n".join(codes)))
    return out


def command_cells():
    return [cells for cells in tables("Commands") if cells[1] != "none"]


def commands():
    return [code for cells in command_cells() for code in CODE.findall(cells[1])]


def run(*args, **kwargs):
    return subprocess.run([str(onehop_bin() / args[0])] + list(args[1:]), capture_output=True,
                          text=True, timeout=60, **kwargs)


# ------------------------------------------------------------ settings


def test_the_page_has_its_tables():
    assert len(setting_lines()) >= 35
    assert len(commands()) >= 20
    assert len(tables("Log lines")) >= 15


@pytest.mark.parametrize("where,line", setting_lines(), ids=lambda v: str(v)[:40])
def test_each_setting_is_accepted_by_onehop_check(tmp_path, where, line):
    files = {"onehop.conf": "", "routes": "", "aliases": ""}
    files[where] = line + "\n"
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    r = run("onehop", "-C", str(tmp_path), "check")
    assert r.returncode == 0, "%s line %r: %s%s" % (where, line, r.stdout, r.stderr)


def test_a_key_onehop_lacks_is_refused(tmp_path):
    """The check above can fail: a Postfix key in onehop.conf is refused."""
    (tmp_path / "onehop.conf").write_text("maximal_queue_lifetime = 5d\n")
    r = run("onehop", "-C", str(tmp_path), "check")
    assert r.returncode == 1 and "maximal_queue_lifetime" in r.stdout + r.stderr, r


# ------------------------------------------------------------ commands


def help_lines():
    r = run("onehop", "--help")
    text = r.stdout + r.stderr
    assert "onehop start" in text, text
    return [l.strip() for l in text.splitlines() if l.strip().startswith("onehop ")]


def man_text(name):
    return (ROOT / "docs" / "man" / name).read_text().replace("\\-", "-")


@pytest.mark.parametrize("command", commands())
def test_each_command_is_documented_by_the_program(command):
    words = command.split()
    if words[0] == "onehop":
        if words[1] == "-C":
            assert "-C DIR" in run("onehop", "--help").stderr + run("onehop", "--help").stdout
            words = ["onehop"] + words[3:]
        lines = [l for l in help_lines() if l.split()[1] == words[1]]
        assert lines, "%s: no such command in onehop --help" % command
        for option in (w for w in words[2:] if w.startswith("-")):
            assert any(option in l for l in lines), "%s: %s not in %s" % (command, option, lines)
    elif words[0] == "sendmail":
        man = man_text("sendmail.1")
        for option in words[1:]:
            assert re.search(r"(^|[ \n])%s\b" % re.escape(option), man), (command, option)
    else:
        assert words[0] in ("mailq", "newaliases"), command
        assert (onehop_bin() / words[0]).exists(), command
        assert ".B %s" % words[0] in man_text("sendmail.1")


def test_read_only_commands_run_on_an_instance(onehop, master_bin):
    listed = set(commands())
    mta = new_instance(onehop, master_bin, local_domains="example.com, localhost")
    mta.start()
    for command in READ_ONLY:
        shown = command.replace("@DOMAIN", "@example.com")
        assert command in listed or command.replace(" --json", "") in listed, command
        words = shown.split()
        if words[0] == "onehop":
            r = mta.cmd(*words[1:])
        else:
            r = mta.run(words[0])
        assert r.rc == 0, (shown, r)


# ------------------------------------------------------------ links


@pytest.mark.parametrize("name", ["README", "INSTALL"])
def test_linked_from(name):
    assert "docs/postfix-switch.md" in (ROOT / name).read_text()


def test_install_has_the_section_the_page_names():
    assert "Replacing Postfix on Debian" in (ROOT / "INSTALL").read_text()
