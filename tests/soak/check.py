"""The soak's checker: did every message the MTA accepted reach its
recipient, or come back to its sender as a DSN, as SPEC D4 and D6 allow?

What it does: reads accepted.jsonl (one line per accepted message: id,
sender, the accepted recipients), every message the SMTP peers accepted,
and every file of the local Maildirs, and sorts each accepted (id,
recipient) pair into:

  delivered  found at a peer (the peer's envelope names the recipient and
             the message carries the id in X-Soak-Id) or in the recipient's
             Maildir (Delivered-To: the recipient, X-Soak-Id: the id);
             counted once per copy, so duplicates show
  bounced    not delivered, and a DSN (null sender, multipart/report) in
             the sender's mailbox carries the id among the original headers
             and the recipient as a Final-Recipient with Action: failed
  lost       neither: the failure the soak exists to find

It also counts deliveries of messages that were not recorded as accepted
(a session cut off after the commit but before the 250 reached the
client: allowed, at-least-once) and DSNs for pairs that were delivered.

Every message the peers accepted is saved in WORK/peers.jsonl, so that
`python3 tests/soak/check.py WORK` checks a finished run again.

It must never: count a pair as delivered or bounced without finding the
message itself.
"""

import collections
import json
import re
import sys
from pathlib import Path

ID_RE = re.compile(rb"^X-Soak-Id: (\S+)", re.M | re.I)
DELIVERED_TO_RE = re.compile(rb"^Delivered-To: (\S+)", re.M | re.I)
FINAL_RE = re.compile(rb"^Final-Recipient: rfc822;\s*(\S+)\s*\r?\nAction: failed", re.M | re.I)


def _is_dsn(data):
    return b"multipart/report" in data[:4000] and b"report-type=delivery-status" in data[:4000]


def _dsn_pairs(data):
    """(id, recipient) pairs a DSN reports as failed."""
    ids = {m.decode().lower() for m in ID_RE.findall(data)}
    rcpts = {m.decode().lower() for m in FINAL_RE.findall(data)}
    return {(i, r) for i in ids for r in rcpts}


class Outcomes:
    def __init__(self):
        self.delivered = collections.Counter()  # (id, rcpt) -> copies
        self.bounced = collections.Counter()  # (id, rcpt) -> DSNs
        self.dsn_by_mailbox = collections.Counter()
        self.unparsed = 0

    def peer_message(self, mail_from, rcpt_tos, data):
        if mail_from in ("", "<>") and _is_dsn(data):
            for pair in _dsn_pairs(data):
                self.bounced[pair] += 1
            self.dsn_by_mailbox["peer"] += 1
            return
        ids = ID_RE.findall(data)
        if not ids:
            self.unparsed += 1
            return
        mid = ids[0].decode().lower()
        for r in rcpt_tos:
            self.delivered[(mid, r.lower())] += 1

    def maildir_file(self, data):
        head = data[:8000]
        if head.startswith(b"Return-Path: <>") and _is_dsn(data):
            for pair in _dsn_pairs(data):
                self.bounced[pair] += 1
            self.dsn_by_mailbox["local"] += 1
            return
        ids = ID_RE.findall(head)
        to = DELIVERED_TO_RE.findall(head)
        if not ids or not to:
            self.unparsed += 1
            return
        self.delivered[(ids[0].decode().lower(), to[0].decode().lower())] += 1


def read_maildirs(outcomes, mail_root):
    files = 0
    for path in Path(mail_root).glob("*/Maildir/*/*"):
        if path.parent.name in ("new", "cur") and path.is_file():
            outcomes.maildir_file(path.read_bytes())
            files += 1
    return files


def read_accepted(path):
    messages = []
    with open(path) as f:
        for line in f:
            if line.strip():
                messages.append(json.loads(line))
    return messages


def check(accepted, outcomes):
    """The figures of the result table (a dict)."""
    by_path = collections.Counter()
    pairs = set()
    for m in accepted:
        by_path[m["path"]] += 1
        for r in m["rcpts"]:
            pairs.add((m["id"].lower(), r.lower()))
    delivered = {p for p in pairs if outcomes.delivered[p] > 0}
    bounced = {p for p in pairs - delivered if outcomes.bounced[p] > 0}
    lost = sorted(pairs - delivered - bounced)
    accepted_ids = {m["id"].lower() for m in accepted}
    dup_pairs = [p for p in delivered if outcomes.delivered[p] > 1]
    extra = {p for p in outcomes.delivered if p[0] not in accepted_ids}
    return {
        "accepted_messages": by_path,
        "accepted_pairs": len(pairs),
        "delivered_pairs": len(delivered),
        "bounced_pairs": len(bounced),
        "lost_pairs": len(lost),
        "lost": lost,
        "duplicate_pairs": len(dup_pairs),
        "duplicate_copies": sum(outcomes.delivered[p] - 1 for p in dup_pairs),
        "delivered_and_bounced": len({p for p in delivered if outcomes.bounced[p] > 0}),
        "unaccepted_delivered_pairs": len(extra),
        "dsns": dict(outcomes.dsn_by_mailbox),
        "unparsed": outcomes.unparsed,
    }


def save_peer_messages(path, messages):
    with open(path, "w") as f:
        for m in messages:
            f.write(json.dumps({"from": m.mail_from, "to": list(m.rcpt_tos),
                                "data": m.data.decode("latin-1")}) + "\n")


def check_run(work):
    """check() over a run's directory: peers.jsonl, mail/, accepted.jsonl."""
    work = Path(work)
    outcomes = Outcomes()
    with open(work / "peers.jsonl") as f:
        for line in f:
            m = json.loads(line)
            outcomes.peer_message(m["from"], m["to"], m["data"].encode("latin-1"))
    read_maildirs(outcomes, work / "mail")
    return check(read_accepted(work / "accepted.jsonl"), outcomes)


if __name__ == "__main__":
    figures = check_run(sys.argv[1])
    figures["lost"] = figures["lost"][:20]
    print(json.dumps(figures, indent=1, default=dict))
    sys.exit(1 if figures["lost_pairs"] else 0)
