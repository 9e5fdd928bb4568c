#!/bin/sh
# bench/latency/run.sh — relay latency, onehop against a private Postfix in
# the same run (issue 13 "Benchmark": latency from the 250 at the end of
# DATA to the sink, p50 at most Postfix's).
#
#   bench/latency/run.sh [BIN]   BIN: directory of onehop's programs (default <repo>/bin)
#
# Environment: MESSAGES (default 200), RUNS (default 3; the two MTAs
# alternate, medians reported), WORK (default /tmp/onehop-latency).
#
# One sink (bench/latency/latency.py sink, ours: it records CLOCK_MONOTONIC
# when the "." ending each message's DATA arrives, with the message's
# X-Bench-Id) on 127.0.0.1. Each run of each MTA: a fresh queue, the MTA
# started and ready, then `latency.py client`: MESSAGES messages of 4 KiB
# (1 recipient) one after the other, ONE SMTP SESSION PER MESSAGE (connect,
# EHLO, MAIL, RCPT, DATA, QUIT, nothing pipelined), the next one only once
# the sink has the previous one, so no message queues behind another.
# Per message: relay latency = the sink's arrival time - the time the
# client read the 250 after DATA; acceptance latency = that 250 - the
# connect (the session's cost, the queue's fsync included). Reported per
# MTA: the medians over the runs of p50, p99 (nearest rank) and max.
#
# Both at their defaults. onehop (relayhost = the sink): onehop-smtpd hands
# the message to the onehop-queue server, which fsyncs the group and writes
# a byte into the router's trigger FIFO; the 250 goes out after that
# commit; the router, woken by the FIFO, lists the queue, journals the
# take, has the cleaner move the file into active/ and hands the job to
# onehop-remote, which keeps its connection to the sink open between
# messages (a 60 s scan is only the fall-back). Postfix (smtpd on 127.0.0.1, relayhost = the sink): smtpd ->
# cleanup, which fsyncs the queue file and then tells qmgr through its
# public/qmgr FIFO that mail arrived; qmgr moves it from incoming to active
# and gives it to an smtp process (connection cache on demand, so a
# session kept open from the previous message may be reused). Its
# in_flow_delay (1 s) only slows cleanup when qmgr falls behind, which
# sequential messages never make it do. Both fsync before the 250.
# Needs root (Postfix). Prints a Markdown table.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${1:-$top/bin}" && pwd)
MESSAGES=${MESSAGES:-200}
RUNS=${RUNS:-3}
WORK=${WORK:-/tmp/onehop-latency}
PY=/usr/bin/python3

for p in onehop onehop-queue onehop-master onehop-router onehop-remote onehop-smtpd; do
    [ -x "$BIN/$p" ] || { echo "latency: $BIN/$p missing: run make first" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "latency: run as root (the private Postfix needs it)" >&2; exit 1; }

# shellcheck source=bench/lib/common.sh
. "$top/bench/lib/common.sh"
# shellcheck source=bench/lib/postfix.sh
. "$top/bench/lib/postfix.sh"
fresh_dir "$WORK"
pf_require

tool=$top/bench/latency/latency.py
oh=$WORK/onehop
pf=$WORK/postfix
SINK=$(free_port)
: > "$WORK/sink.log"
"$PY" "$tool" sink "$SINK" "$WORK/sink.log" > "$WORK/sink.out" 2>&1 &
sink_pid=$!
stop_all_on_exit
for _ in $(seq 100); do
    grep -q listening "$WORK/sink.out" 2>/dev/null && break
    sleep 0.1
done
grep -q listening "$WORK/sink.out" || { echo "latency: the sink did not start" >&2; exit 1; }

# client PORT RESULTS: one run; appends its summary line to RESULTS
client() {
    line=$("$PY" "$tool" client "$1" "$WORK/sink.log" "$MESSAGES" "$WORK/messages.txt") || {
        echo "latency: client failed: $line" >&2
        return 1
    }
    echo "$line" >> "$2"
    echo "  $line" >&2
}

oh_run() {
    port=$(free_port)
    oh_relay "$oh" "127.0.0.1:$port" "[127.0.0.1]:$SINK" < /dev/null
    client "$port" "$WORK/onehop.runs"
    oh_stop "$oh"
}

pf_run() {
    port=$(free_port)
    pf_relay "$pf" "127.0.0.1:$port" "[127.0.0.1]:$SINK"
    client "$port" "$WORK/postfix.runs"
    pf_stop "$pf"
    sleep 1
}

: > "$WORK/onehop.runs"
: > "$WORK/postfix.runs"
i=0
while [ $i -lt "$RUNS" ]; do
    echo "latency run $((i + 1)): onehop" >&2
    oh_run
    echo "latency run $((i + 1)): Postfix" >&2
    pf_run
    i=$((i + 1))
done

# field NAME FILE: the values of NAME= over the runs
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" "$2" | tr '\n' ' '; }
stat() { field "$1" "$2" | median; }

echo
echo "$MESSAGES messages of 4 KiB, 1 recipient, one SMTP session each, sent one after"
echo "the other; medians of $RUNS runs (milliseconds):"
echo
echo "| system | relay p50 | relay p99 | relay max | accept p50 | accept p99 | accept max | relay p50 per run |"
echo "|---|---|---|---|---|---|---|---|"
for sys in onehop postfix; do
    f=$WORK/$sys.runs
    name=$([ $sys = onehop ] && echo onehop || echo "Postfix $(pf_version)")
    echo "| $name | $(stat p50_ms "$f") | $(stat p99_ms "$f") | $(stat max_ms "$f") |" \
        "$(stat acc_p50_ms "$f") | $(stat acc_p99_ms "$f") | $(stat acc_max_ms "$f") |" \
        "$(field p50_ms "$f")|"
done
echo
echo "Every run (n: messages timed; lost: not at the sink within 30 s; reused: messages"
echo "the sink got on a connection the MTA had used before):"
echo
echo '```'
sed 's/^/onehop   /' "$WORK/onehop.runs"
sed 's/^/Postfix  /' "$WORK/postfix.runs"
echo '```'
echo
for k in p50_ms p99_ms acc_p50_ms; do
    echo "$k $(stat $k "$WORK/onehop.runs") $(stat $k "$WORK/postfix.runs")"
done | awk '{ r[$1] = $2 / $3 } END {
    printf "ratios onehop/Postfix (lower is better): relay p50 %.2fx, relay p99 %.2fx, accept p50 %.2fx\n",
        r["p50_ms"], r["p99_ms"], r["acc_p50_ms"] }'
