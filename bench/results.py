#!/usr/bin/python3
"""bench/results.py — turns one bench/all.sh run into bench/RESULTS.md's
generated sections and prints the closing summary.

usage: results.py WORK RESULTS

WORK is bench/all.sh's directory: meta (key=value: machine, versions,
times), load (one "HH:MM:SS l1 l5 l15" line every 10 s), commands
("step|command" lines), and per step STEP.out (its tables), STEP.err,
STEP.status. RESULTS is the Markdown file to rewrite ("" or "-": none).

Each generated block sits between <!-- bench:NAME:begin --> and
<!-- bench:NAME:end --> (NAME: summary, inject, dns, remote, relay,
latency) and is replaced whole; a block not yet in the file is inserted
before the "## Soak" section (or at the end). Nothing outside the markers
is changed. A step that did not run or whose table is missing says so in
its block and in the summary; no figure is made up.
"""

import os
import re
import sys

STEPS = ["latency", "relay", "remote", "inject", "dns"]
TITLES = {
    "inject": "Injection: sendmail and onehop-queue against Postfix's sendmail",
    "dns": "DNS cache: onehop-dnscache against unbound",
    "remote": "Remote delivery: onehop against Postfix's smtp client",
    "relay": "SMTP relay: smtp-source -> MTA -> smtp-sink",
    "latency": "Relay latency: the 250 after DATA -> the sink",
}


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def num(text):
    return float(text.replace(",", "").split()[0])


def table_rows(text):
    """The data rows of every Markdown table in TEXT, as lists of cells."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


class Verdicts:
    def __init__(self):
        self.rows = []

    def add(self, issue, what, target, figure, met):
        self.rows.append((issue, what, target, figure, met))

    def missing(self, issue, what, why):
        self.rows.append((issue, what, "-", why, None))


def check_inject(out, v):
    rows = {r[0]: r for r in table_rows(out) if len(r) >= 3}
    seq = next((r for k, r in rows.items() if k == "onehop sendmail, sequential"), None)
    pf = next((r for k, r in rows.items() if k.startswith("Postfix") and "sequential" in k), None)
    srv = next((r for k, r in rows.items() if k.startswith("onehop-queue --server")), None)
    if seq and pf and pf[1] != "skipped":
        ratio = num(seq[1]) / num(pf[1])
        v.add("3", "sendmail sequential, messages/s vs Postfix", ">= 5x",
              "%s vs %s/s: %.1fx" % (seq[1], pf[1], ratio), ratio >= 5)
    else:
        v.missing("3", "sendmail sequential vs Postfix", "no figure")
    if srv:
        rate, fs = num(srv[1]), num(srv[2])
        v.add("3", "onehop-queue --server, 20 writers", ">= 2,000/s, < 1 fsync/message",
              "%.0f/s, %.2f fsync/message" % (rate, fs), rate >= 2000 and fs < 1)


def check_dns(out, v):
    rows = table_rows(out)
    by = {}
    for r in rows:
        if len(r) >= 3 and r[1].isdigit():
            by[(r[0], int(r[1]))] = num(r[2])
    mine = {c: x for (who, c), x in by.items() if who.endswith("one connection per client")}
    theirs = {c: x for (who, c), x in by.items() if who.startswith("unbound")}
    if not mine:
        v.missing("4", "cached lookups/s", "no figure")
        return
    for c in sorted(mine):
        v.add("4", "cached lookups/s, %d client(s)" % c, ">= 100,000", "%.0f" % mine[c],
              mine[c] >= 100000)
        if c in theirs:
            v.add("4", "vs unbound, %d client(s)" % c, "> 1x",
                  "%.0f vs %.0f: %.2fx" % (mine[c], theirs[c], mine[c] / theirs[c]),
                  mine[c] > theirs[c])
    m = re.search(r"\*\*(\d+) bytes per\s+cached name\*\*", out)
    if m:
        v.add("4", "memory per cached name", "< 300 bytes", "%s bytes" % m.group(1),
              int(m.group(1)) < 300)


def check_remote(out, v):
    rows = [r for r in table_rows(out) if len(r) >= 5 and r[0] != "case"]
    cases = {}
    for r in rows:
        cases.setdefault(r[0], {})["oh" if r[1] == "onehop" else "pf"] = r
    if not cases:
        v.missing("10", "remote delivery", "no figure")
    for case, pair in cases.items():
        if "oh" not in pair or "pf" not in pair:
            continue
        oh, pf = pair["oh"], pair["pf"]
        cpu = num(oh[4]) / num(pf[4])
        rate = num(oh[2]) / num(pf[2])
        v.add("10", "%s: messages per CPU second" % case, ">= 3x Postfix",
              "%s vs %s: %.1fx" % (oh[4], pf[4], cpu), cpu >= 3)
        v.add("10", "%s: messages/s" % case, ">= 1x Postfix",
              "%s vs %s: %.1fx" % (oh[2], pf[2], rate), rate >= 1)


def check_relay(out, v):
    blocks = re.split(r"\n(?=\d+ messages of 4 KiB)", out)
    seen = False
    for b in blocks:
        head = re.match(r"(\d+) messages of 4 KiB, (\d+) recipient\(s\) each, (\d+)", b)
        if not head:
            continue
        rows = [r for r in table_rows(b) if r[0] != "system"]
        oh = next((r for r in rows if r[0] == "onehop"), None)
        pf = next((r for r in rows if r[0].startswith("Postfix")), None)
        if not (oh and pf):
            continue
        seen = True
        load = "%s x %s rcpt, %s sessions" % head.groups()
        rate = num(oh[1]) / num(pf[1])
        cpu = num(oh[3])
        pss = num(oh[4]) / num(pf[4])
        v.add("13", "%s: messages/s" % load, ">= 5x Postfix",
              "%s vs %s: %.2fx" % (oh[1], pf[1], rate), rate >= 5)
        v.add("13", "%s: CPU per message, all onehop processes" % load, "<= 0.5 ms",
              "%s (Postfix %s)" % (oh[3], pf[3]), cpu <= 0.5)
        v.add("13", "%s: peak PSS" % load, "<= 1/3 of Postfix",
              "%s vs %s: %.2fx" % (oh[4], pf[4], pss), pss <= 1 / 3.0)
    if not seen:
        v.missing("13", "relay", "no figure")
    idle = next((r for r in table_rows(out) if r[0] == "onehop" and len(r) == 4), None)
    if idle:
        mib = num(idle[3])
        v.add("13", "idle sessions held (greeted %s, refused %s)" % (idle[1], idle[2]),
              "< 200 MB", idle[3], mib < 200 and num(idle[2]) == 0)


def check_latency(out, v):
    rows = [r for r in table_rows(out) if r[0] != "system"]
    oh = next((r for r in rows if r[0] == "onehop"), None)
    pf = next((r for r in rows if r[0].startswith("Postfix")), None)
    if not (oh and pf):
        v.missing("13", "relay latency p50", "no figure")
        return
    v.add("13", "relay latency p50 (250 -> sink)", "<= Postfix's",
          "%s ms vs %s ms: %.2fx" % (oh[1], pf[1], num(oh[1]) / num(pf[1])),
          num(oh[1]) <= num(pf[1]))


CHECKS = {"inject": check_inject, "dns": check_dns, "remote": check_remote,
          "relay": check_relay, "latency": check_latency}


def load_summary(work):
    vals = []
    for line in read(os.path.join(work, "load")).splitlines():
        parts = line.split()
        if len(parts) >= 2:
            vals.append(float(parts[1]))
    if not vals:
        return "not sampled"
    s = sorted(vals)
    return "1-minute load average %.1f to %.1f, median %.1f (%d samples, every 10 s)" % (
        s[0], s[-1], s[len(s) // 2], len(s))


def step_block(name, work, meta):
    status = read(os.path.join(work, name + ".status"), "not run (not in ONLY)").strip()
    out = read(os.path.join(work, name + ".out")).strip("\n")
    cmd = dict(l.split("|", 1) for l in read(os.path.join(work, "commands")).splitlines()
               if "|" in l).get(name, "")
    text = ["### Latest `make bench` run: %s, onehop %s" % (meta.get("date", "?"),
                                                              meta.get("onehop", "?")),
            "", "Generated by bench/all.sh (RUNS=%s%s); step: %s." % (
                meta.get("runs", "?"), ", QUICK" if meta.get("quick") == "1" else "", status)]
    if cmd:
        text += ["", "```", cmd, "```"]
    text += ["", out if out else "(no output)"]
    return "\n".join(text).rstrip() + "\n"


def summary_block(work, meta, verdicts):
    cmds = read(os.path.join(work, "commands")).splitlines()
    lines = [
        "## `make bench`: the latest run (generated)", "",
        "Written by `make bench` (bench/all.sh, then bench/results.py) on %s, %s to %s "
        "(%s s), %s runs of each case, the two systems alternated; every figure is a "
        "median. onehop %s (commit %s); Postfix %s (Debian, a private instance, "
        "bench/lib/postfix.sh); unbound %s." % (
            meta.get("date", "?"), meta.get("date", "?").split()[-2] if meta.get("date") else "?",
            meta.get("end", "?"), meta.get("seconds", "?"), meta.get("runs", "?"),
            meta.get("onehop", "?"), meta.get("commit", "?"), meta.get("postfix", "?"),
            meta.get("unbound", "?") or "missing"), "",
        "Machine: %s, %s cores, %s memory, %s, %s. Shared with whatever else ran on the "
        "machine while it ran: load at the start %s; during the run %s. Wall-clock "
        "rates under that load are indicative; the ratios come from alternating runs under "
        "the same load." % (meta.get("cpu", "?"), meta.get("cores", "?"), meta.get("memory", "?"),
                            meta.get("disk", "?"), meta.get("kernel", "?"),
                            meta.get("load_start", "?"), load_summary(work)), "",
        "Commands (from the top of the tree, as root; `make bench` runs them all):", "", "```"]
    lines += [c.split("|", 1)[1] for c in cmds if "|" in c]
    lines += ["```", "", "| step | status |", "|---|---|"]
    for name in STEPS:
        lines.append("| %s | %s |" % (name, read(os.path.join(work, name + ".status"),
                                                  "not run").strip()))
    lines += ["", "Against the targets of the issues (every row where onehop is behind says "
              "**behind**):", "", "| issue | figure | target | onehop | verdict |",
              "|---|---|---|---|---|"]
    for issue, what, target, figure, met in verdicts.rows:
        verdict = "no figure" if met is None else ("met" if met else "**behind**")
        lines.append("| %s | %s | %s | %s | %s |" % (issue, what, target, figure, verdict))
    return "\n".join(lines) + "\n"


def replace_block(text, name, body):
    begin, end = "<!-- bench:%s:begin -->" % name, "<!-- bench:%s:end -->" % name
    block = "%s\n%s%s" % (begin, body, end)
    i, j = text.find(begin), text.find(end)
    if i >= 0 and j > i:
        return text[:i] + block + text[j + len(end):]
    if name == "summary":
        k = text.find("\n", text.find("# Benchmarks")) + 1 if "# Benchmarks" in text else 0
        return text[:k] + "\n" + block + "\n" + text[k:]
    body = "## %s\n\n%s\n" % (TITLES[name], block)
    k = text.find("\n## Soak")
    if k < 0:
        return text.rstrip("\n") + "\n\n" + body
    return text[:k + 1] + body + "\n" + text[k + 1:]


def main(argv):
    work, results = argv[1], argv[2]
    meta = {}
    for line in read(os.path.join(work, "meta")).splitlines():
        if "=" in line:
            k, val = line.split("=", 1)
            meta[k] = val
    verdicts = Verdicts()
    for name in STEPS:
        out = read(os.path.join(work, name + ".out"))
        if os.path.exists(os.path.join(work, name + ".status")):
            CHECKS[name](out, verdicts)
    summary = summary_block(work, meta, verdicts)
    if results not in ("", "-"):
        text = read(results, "# Benchmarks\n")
        text = replace_block(text, "summary", summary)
        for name in STEPS:
            if os.path.exists(os.path.join(work, name + ".status")):
                text = replace_block(text, name, step_block(name, work, meta))
        with open(results + ".tmp", "w") as f:
            f.write(text)
        os.replace(results + ".tmp", results)
        print("bench: %s rewritten (its generated sections)" % results)
    print()
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
