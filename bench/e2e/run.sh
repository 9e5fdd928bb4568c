#!/bin/sh
# bench/e2e/run.sh — end to end: `sendmail` -> queue -> router -> remote ->
# Postfix's smtp-sink, onehop against a private Postfix in the same run.
#
#   bench/e2e/run.sh [BIN]       BIN: directory of onehop's programs (default <repo>/bin)
#
# Environment: MESSAGES (default 5000), RUNS (default 3; medians reported),
# PARALLEL (sendmail loops at once, default 8), WORK (default /tmp/onehop-e2e).
#
# One smtp-sink (`smtp-sink -c`, its running counter of messages, mesg=N) on
# 127.0.0.1:SINK. Each run of each system: a fresh queue, the daemons
# started and ready, then PARALLEL loops of `sendmail -f bench@a.test
# rcpt@b.test < 4 KiB message` (MESSAGES in all); the clock runs from the
# first submission until the sink has counted every message of the run AND
# the MTA's queue is empty (onehop: no file under queue/incoming or
# queue/active; Postfix: no file under maildrop, incoming, active,
# deferred). onehop: relayhost = [127.0.0.1]:SINK, everything else its
# defaults (remote_concurrency 100, remote_destination_concurrency 20).
# Postfix: a private instance (`postfix -c DIR`, its own queue), relayhost =
# [127.0.0.1]:SINK, its defaults otherwise (default_destination_concurrency_limit
# 20). Both keep every fsync. Needs root (Postfix); prints a Markdown table.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${1:-$top/bin}" && pwd)
MESSAGES=${MESSAGES:-5000}
RUNS=${RUNS:-3}
PARALLEL=${PARALLEL:-8}
WORK=${WORK:-/tmp/onehop-e2e}
PY=/usr/bin/python3

for p in onehop sendmail onehop-queue onehop-master onehop-router onehop-remote; do
    [ -x "$BIN/$p" ] || { echo "e2e: $BIN/$p missing: run make first" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "e2e: run as root (the private Postfix needs it)" >&2; exit 1; }
command -v smtp-sink >/dev/null || { echo "e2e: smtp-sink (Debian postfix) is needed" >&2; exit 1; }

# shellcheck source=bench/lib/common.sh
. "$top/bench/lib/common.sh"
# shellcheck source=bench/lib/postfix.sh
. "$top/bench/lib/postfix.sh"
fresh_dir "$WORK"
msg=$WORK/message.eml
# shellcheck source=bench/message.sh
. "$top/bench/message.sh"
make_message "$msg"

SINK=$(free_port)
smtp-sink -c -u nobody "127.0.0.1:$SINK" 1000 > "$WORK/sink.out" 2>&1 &
sink_pid=$!
oh=$WORK/onehop
pf=$WORK/postfix
stop_all_on_exit
sleep 0.5

# PARALLEL loops of MESSAGES/PARALLEL sendmail runs each (PREFIX: a command
# the whole of each loop runs under, e.g. setpriv: one exec a loop, not one
# a message)
submit() {
    per=$((MESSAGES / PARALLEL))
    j=0
    while [ $j -lt "$PARALLEL" ]; do
        $PREFIX sh -c 'm=$1; n=$2; shift 2; i=0
            while [ $i -lt "$n" ]; do "$@" < "$m" > /dev/null || exit 1; i=$((i + 1)); done' \
            sh "$msg" "$per" "$@" &
        j=$((j + 1))
    done
    wait
}
PREFIX=""

# ------------------------------------------------------------------ onehop
oh_run() {
    oh_relay "$oh" "127.0.0.1:$(free_port)" "[127.0.0.1]:$SINK" < /dev/null
    base=$(sink_count "$WORK/sink.out")
    t0=$(now)
    PREFIX="setpriv --reuid=nobody --regid=nogroup --clear-groups --"
    submit "$BIN/sendmail" -C "$oh" -f bench@a.test rcpt@b.test
    PREFIX=""
    wait_done "$WORK/sink.out" $((base + MESSAGES)) "$oh/queue/incoming" "$oh/queue/active"
    t1=$(now)
    oh_stop "$oh"
    sent=$(grep -c 'status=sent' "$oh/maillog" || true)
    echo "$t0 $t1" | awk '{ printf "%.3f\n", $2 - $1 }'
    echo "onehop run: $sent sent lines" >&2
}

# ------------------------------------------------------------------ Postfix
pf_run() {
    pf_relay "$pf" "" "[127.0.0.1]:$SINK"
    base=$(sink_count "$WORK/sink.out")
    t0=$(now)
    submit /usr/sbin/sendmail -C "$pf/etc" -f bench@a.test rcpt@b.test
    wait_done "$WORK/sink.out" $((base + MESSAGES)) "$pf/spool/maildrop" "$pf/spool/incoming" \
        "$pf/spool/active" "$pf/spool/deferred"
    t1=$(now)
    pf_stop "$pf"
    sleep 1
    echo "$t0 $t1" | awk '{ printf "%.3f\n", $2 - $1 }'
}

oh_times=""; pf_times=""
r=0
while [ $r -lt "$RUNS" ]; do
    echo "run $((r + 1)): onehop" >&2
    oh_times="$oh_times $(oh_run)"
    echo "run $((r + 1)): Postfix" >&2
    pf_times="$pf_times $(pf_run)"
    r=$((r + 1))
done
oh_med=$(echo "$oh_times" | median)
pf_med=$(echo "$pf_times" | median)
rate() { echo "$MESSAGES $1" | awk '{ printf "%.0f", $1 / $2 }'; }
echo "| system | messages/s | time (median of $RUNS) | runs |"
echo "|---|---|---|---|"
echo "| onehop | $(rate "$oh_med") | $oh_med s |$oh_times |"
echo "| Postfix $(pf_version) | $(rate "$pf_med") | $pf_med s |$pf_times |"
echo "$oh_med $pf_med" | awk '{ printf "\nonehop / Postfix: %.2fx (%d messages, %s sendmail loops, load at the end: ", $2 / $1, '"$MESSAGES"', '"$PARALLEL"' }'
cut -d' ' -f1-3 /proc/loadavg | tr '\n' ')'
echo
