#!/bin/sh
# bench/remote/run.sh — remote delivery, onehop against Postfix, same run:
#
#   bench/remote/run.sh [BIN]        (root; BIN defaults to the tree's bin/)
#
# MESSAGES (10000) messages of 4,096 bytes (bench/message.sh), with 1 and
# then 5 recipients, delivered to a sink on 127.0.0.1:$SINK_PORT (35025):
# Postfix's smtp-sink, and bench/remote/sink.c answering every 10th RCPT
# with 451 (smtp-sink's -r refuses every RCPT). For each of the four cases,
# RUNS (3) runs of each MTA, alternated, and the medians of messages/s and
# CPU seconds per 1,000 messages. WORK: the scratch directory (default: a
# new /tmp/onehop-bench-remote.PID directory), removed at the end unless KEEP=1.
#
# Only delivery is timed. onehop: the messages are queued first with
# `onehop-queue --server` (bench/remote/queue_onehop.py) while no daemon
# runs; the clock starts at `onehop start` (master, cleaner, dnscache,
# router, remote) and stops when the sink has everything (smtp-sink -M:
# MESSAGES messages; sink.c: every RCPT answered and every accepted message
# ended). Postfix: a private instance (`postfix -c DIR`, its own
# queue_directory and data_directory, inet_interfaces = loopback-only,
# relayhost = [127.0.0.1]:SINK_PORT, master.cf with smtpd only on
# 127.0.0.1:$INJECT_PORT) takes the messages by smtp-source while
# `defer_transports = smtp` holds them in its deferred queue; the clock
# starts when defer_transports is removed (postconf -e, postfix reload,
# postqueue -f) and stops the same way.
#
# CPU: user + system seconds of every process of the MTA's daemon tree
# (onehop-master and its children; Postfix's master and its children),
# from /proc (bench/remote/treecpu.py: the difference of two readings, so
# children that ended meanwhile count through their parent). Command-line
# tools (onehop start, postconf, postfix reload, postqueue) are not counted
# for either; the sink is the same for both and not counted.
#
# onehop runs as the ordinary user `nobody` (one account, SPEC 7); Postfix
# as root with its own accounts. Traffic stays on 127.0.0.1. Every process
# started here is stopped by its pid or its own stop command.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$top/bin}
MESSAGES=${MESSAGES:-10000}
RUNS=${RUNS:-3}
SINK_PORT=${SINK_PORT:-35025}
INJECT_PORT=${INJECT_PORT:-35026}
PY=/usr/bin/python3
# shellcheck source=bench/lib/common.sh
. "$top/bench/lib/common.sh"
# shellcheck source=bench/lib/postfix.sh
. "$top/bench/lib/postfix.sh"

[ "$(id -u)" -eq 0 ] || { echo "run.sh: run as root (private Postfix)" >&2; exit 1; }
pf_require

WORK=${WORK:-/tmp/onehop-bench-remote.$$}
rm -rf "$WORK"
mkdir -p -m 700 "$WORK"
chmod 755 "$WORK"
oh=$WORK/onehop
pf=$WORK/postfix
sink_pid=

cleanup() {
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
    oh_stop "$oh"
    pf_stop "$pf"
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

cc -std=c11 -O2 -Wall -Wextra -Werror -o "$WORK/sink" "$top/bench/remote/sink.c"
. "$top/bench/message.sh"
make_message "$WORK/message"
chmod 644 "$WORK/message"

calc() { awk "BEGIN { printf \"$1\", $2 }"; }   # calc FORMAT EXPRESSION
elapsed() { calc %.2f "$2 - $1"; }

# start_sink KIND NRCPT: the sink of the case, in the background
start_sink() {
    if [ "$1" = smtp-sink ]; then
        /usr/sbin/smtp-sink -u nobody -M "$MESSAGES" "127.0.0.1:$SINK_PORT" 512 \
            > /dev/null 2>&1 &
    else
        "$WORK/sink" 127.0.0.1 "$SINK_PORT" $((MESSAGES * $2)) 10 > "$WORK/sink.out" 2>&1 &
    fi
    sink_pid=$!
    for _ in $(seq 100); do
        $PY -c "import socket,sys; socket.create_connection(('127.0.0.1', $SINK_PORT), 1).close()" \
            2>/dev/null && return 0
        sleep 0.1
    done
    echo "run.sh: the sink does not listen" >&2
    exit 1
}

# wait_sink: until the sink exits (it has everything), at most 600 s
wait_sink() {
    for _ in $(seq 12000); do
        kill -0 "$sink_pid" 2>/dev/null || { wait "$sink_pid" || true; sink_pid=; return 0; }
        sleep 0.05
    done
    echo "run.sh: the sink did not get everything within 600 s" >&2
    exit 1
}

# ------------------------------------------------------------------ onehop
oh_setup() { oh_create "$oh" "" "[127.0.0.1]:$SINK_PORT" < /dev/null; }

# oh_run KIND NRCPT: prints "SECONDS CPU"
oh_run() {
    oh_setup
    as_nobody $PY "$top/bench/remote/queue_onehop.py" "$BIN/onehop-queue" "$oh" "$WORK/message" \
        "$MESSAGES" "$2" > /dev/null
    start_sink "$1" "$2"
    t0=$(now)
    oh_start "$oh"
    wait_sink
    t1=$(now)
    cpu=$(treecpu "$(oh_master_pid "$oh")")
    oh_stop "$oh"
    sent=$(grep -c 'status=sent' "$oh/maillog" || true)
    echo "onehop $1 rcpt=$2: $(elapsed "$t0" "$t1") s, cpu $cpu s, $sent recipients sent" >&2
    echo "$(elapsed "$t0" "$t1") $cpu"
}

# ----------------------------------------------------------------- Postfix
pf_setup() {
    # smtpd on 127.0.0.1:INJECT_PORT only, to take the messages
    pf_create "$pf" "127.0.0.1:$INJECT_PORT" <<EOF
relayhost = [127.0.0.1]:$SINK_PORT
defer_transports = smtp
EOF
    pf_start "$pf"
}

pf_count() { pf_queued "$pf" "$1"; }

# pf_run KIND NRCPT: prints "SECONDS CPU"
pf_run() {
    postsuper -c "$pf/etc" -d ALL > /dev/null 2>&1 || true
    /usr/sbin/smtp-source -s 20 -m "$MESSAGES" -r "$2" -F "$WORK/message" -f bench@a.test \
        -t rcpt@b.test "127.0.0.1:$INJECT_PORT"
    for _ in $(seq 1200); do
        [ "$(pf_count deferred)" -eq "$MESSAGES" ] && [ "$(pf_count incoming)" -eq 0 ] &&
            [ "$(pf_count active)" -eq 0 ] && [ "$(pf_count maildrop)" -eq 0 ] && break
        sleep 0.25
    done
    [ "$(pf_count deferred)" -eq "$MESSAGES" ] ||
        { echo "run.sh: Postfix deferred $(pf_count deferred) of $MESSAGES" >&2; exit 1; }
    start_sink "$1" "$2"
    master=$(pf_master_pid "$pf")
    c0=$(treecpu "$master")
    t0=$(now)
    postconf -c "$pf/etc" -e 'defer_transports ='
    postfix -c "$pf/etc" reload > /dev/null 2>&1
    postqueue -c "$pf/etc" -f
    wait_sink
    t1=$(now)
    c1=$(treecpu "$master")
    postconf -c "$pf/etc" -e 'defer_transports = smtp'
    postfix -c "$pf/etc" reload > /dev/null 2>&1
    cpu=$(calc %.2f "$c1 - $c0")
    echo "postfix $1 rcpt=$2: $(elapsed "$t0" "$t1") s, cpu $cpu s" >&2
    echo "$(elapsed "$t0" "$t1") $cpu"
}

# ------------------------------------------------------------------ report

pf_setup
sleep 2
echo "| case | MTA | messages/s | CPU s per 1,000 messages | messages per CPU second | runs (s; CPU s) |"
echo "|---|---|---|---|---|---|"
for case in "smtp-sink 1" "smtp-sink 5" "sink451 1" "sink451 5"; do
    set -- $case
    : > "$WORK/oh.runs"
    : > "$WORK/pf.runs"
    for _ in $(seq "$RUNS"); do
        oh_run "$1" "$2" >> "$WORK/oh.runs"
        pf_run "$1" "$2" >> "$WORK/pf.runs"
    done
    for mta in oh pf; do
        s=$(cut -d' ' -f1 "$WORK/$mta.runs" | median)
        c=$(cut -d' ' -f2 "$WORK/$mta.runs" | median)
        runs=$(awk '{ printf "%s%s; %s", (NR > 1 ? ", " : ""), $1, $2 }' "$WORK/$mta.runs")
        name=$([ "$mta" = oh ] && echo onehop || echo "Postfix $(pf_version)")
        label=$([ "$1" = smtp-sink ] && echo "smtp-sink" || echo "10% RCPT 451")
        echo "| $label, $2 rcpt | $name | $(calc %.0f "$MESSAGES / $s") |" \
            "$(calc %.3f "$c * 1000 / $MESSAGES") |" \
            "$(calc %.0f "$MESSAGES / $c") | $runs |"
    done
done
