#!/bin/sh
# bench/inject.sh — message injection throughput: onehop against Postfix.
#
#   bench/inject.sh [BIN]        BIN: directory of onehop's programs (default <repo>/bin)
#
# Environment: MESSAGES (default 2000), RUNS (default 3; the median is
# reported), COUNT_MESSAGES (messages of each fsync-counting run under
# strace, default MESSAGES: strace slows every fsync, so a smaller count
# keeps the run short and the count per message is the same), WRITERS (server mode, default 20), PARALLEL (default 8),
# WORK (scratch directory, default /tmp/onehop-bench).
#
# For each system the same 4 KiB, 1-recipient message is injected:
#   sendmail sequential   one `sendmail -f ... rcpt < msg` after the other
#   sendmail parallel     PARALLEL loops of MESSAGES/PARALLEL each, at once
#   onehop-queue one-shot the same, exec'ing onehop-queue directly (no sendmail)
#   onehop-queue server   one `onehop-queue --server`, WRITERS concurrent
#                         transactions over its pipe (bench/server_driver.py)
# Postfix runs as a private instance (its own config, queue and data
# directories under WORK, `postfix -c DIR start`, the smtpd listener
# disabled, every transport `discard`); its sendmail is timed until it
# returns, i.e. until postdrop committed the message to the maildrop queue.
# fsync counts come from one extra run of each case under
# `strace -f -c -e trace=fsync,fdatasync`: for onehop, of sendmail and
# onehop-queue (no daemon runs); for Postfix, of sendmail, postdrop AND the
# whole running Postfix (master started under strace -f), since Postfix's
# pickup and cleanup fsync each message again after sendmail returned.
#
# Prints a Markdown table; bench/RESULTS.md keeps the last one with the
# machine it ran on. Needs root for Postfix (it is skipped otherwise), and
# installs Debian's postfix package if missing ("No configuration").
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$top/bin}" && pwd)
MESSAGES=${MESSAGES:-2000}
COUNT=${COUNT_MESSAGES:-$MESSAGES}
RUNS=${RUNS:-3}
WRITERS=${WRITERS:-20}
PARALLEL=${PARALLEL:-8}
WORK=${WORK:-/tmp/onehop-bench}
PY=/usr/bin/python3

for p in sendmail onehop-queue; do
    [ -x "$BIN/$p" ] || { echo "inject.sh: $BIN/$p missing: run make first" >&2; exit 1; }
done
command -v strace >/dev/null || { echo "inject.sh: strace is needed" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK"
msg=$WORK/message.eml

# shellcheck source=bench/message.sh
. "$top/bench/message.sh"
# shellcheck source=bench/lib/common.sh
. "$top/bench/lib/common.sh"
# shellcheck source=bench/lib/postfix.sh
. "$top/bench/lib/postfix.sh"

# ------------------------------------------------------------------ helpers
# loop N CMD... : run CMD N times, stdin from the message
loop() {
    n=$1; shift
    i=0
    while [ $i -lt "$n" ]; do
        "$@" < "$msg" > /dev/null || { echo "inject.sh: '$*' failed" >&2; return 1; }
        i=$((i + 1))
    done
}

# rate SECONDS -> messages per second
rate() { awk -v n="$MESSAGES" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }

# time_sequential CMD... -> seconds
time_sequential() {
    t0=$(now); loop "$MESSAGES" "$@"; t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

time_parallel() {
    per=$((MESSAGES / PARALLEL))
    t0=$(now)
    pids=""
    j=0
    while [ $j -lt "$PARALLEL" ]; do
        loop "$per" "$@" & pids="$pids $!"
        j=$((j + 1))
    done
    for p in $pids; do wait "$p"; done
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

# fsyncs FILE -> fsync + fdatasync calls in an strace -c summary
fsyncs() {
    awk '$NF == "fsync" || $NF == "fdatasync" { n += $4 } END { print n + 0 }' "$1"
}

per_msg() { awk -v a="$1" -v n="$COUNT" 'BEGIN { printf "%.2f", a / n }'; }

# strace_loop OUT CMD...: COUNT runs of CMD (stdin: the message) under
# `strace -f -c`, fsync and fdatasync counted into OUT (a shell wrapper so
# that -f sees every exec)
strace_loop() {
    out=$1; shift
    BENCH_MSG="$msg" BENCH_N="$COUNT" strace -f -c -o "$out" -e trace=fsync,fdatasync \
        sh -c 'i=0; while [ $i -lt "$BENCH_N" ]; do "$@" < "$BENCH_MSG" > /dev/null || exit 1; i=$((i + 1)); done' \
        sh "$@"
}

results=$WORK/results.txt
: > "$results"
last_rate=""
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" >> "$results"; last_rate=$2; }

# ------------------------------------------------------------------- onehop
oh=$WORK/onehop
oh_reset() {
    rm -rf "$oh"
    mkdir -p "$oh/run"
    cat > "$oh/onehop.conf" <<EOF
myhostname = bench.onehop.test
queue_dir = queue
run_dir = run
log = maillog
daemon_dir = $BIN
EOF
}

# median_of_runs RESET MODE CMD...: RUNS timed runs, RESET before each, MODE
# seq or par; sets times (every run's seconds) and s (their median).
median_of_runs() {
    reset=$1; mode=$2; shift 2
    times=""
    r=0
    while [ $r -lt "$RUNS" ]; do
        $reset
        if [ "$mode" = seq ]; then t=$(time_sequential "$@"); else t=$(time_parallel "$@"); fi
        times="$times $t"
        r=$((r + 1))
    done
    s=$(printf '%s\n' $times | median)
}

# case NAME MODE CMD... ; MODE is seq or par
onehop_case() {
    name=$1; mode=$2; shift 2
    median_of_runs oh_reset "$mode" "$@"
    oh_reset
    # count: one run under strace (a shell wrapper so -f sees every exec)
    strace_loop "$WORK/strace.txt" "$@"
    row "$name" "$(rate "$s")" "$(per_msg "$(fsyncs "$WORK/strace.txt")")" "$s s (runs:$times)"
}

oh_server_case() {
    times=""
    r=0
    while [ $r -lt "$RUNS" ]; do
        oh_reset
        out=$("$PY" "$top/bench/server_driver.py" "$BIN/onehop-queue" "$oh" "$MESSAGES" "$WRITERS" 4096)
        case $out in *failed=0*) ;; *) echo "inject.sh: server run failed: $out" >&2; exit 1 ;; esac
        s=$(printf '%s\n' "$out" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p')
        times="$times $s"
        r=$((r + 1))
    done
    s=$(printf '%s\n' $times | median)
    oh_reset
    "$PY" "$top/bench/server_driver.py" "$BIN/onehop-queue" "$oh" "$COUNT" "$WRITERS" 4096 \
        strace -f -c -o "$WORK/strace.txt" -e trace=fsync,fdatasync > /dev/null
    files=$(find "$oh/queue/incoming" -type f | wc -l)
    row "onehop-queue --server, $WRITERS writers" "$(rate "$s")" \
        "$(per_msg "$(fsyncs "$WORK/strace.txt")")" "$s s (runs:$times); $files files"
}

# the message, and the same as inject_proto.h records for the one-shot runs
make_message "$msg"
encode_message "$msg" "$WORK/message.rec"

echo "onehop: sendmail sequential" >&2
onehop_case "onehop sendmail, sequential" seq "$BIN/sendmail" -C "$oh" -f bench@a.test rcpt@b.test
oh_seq=$last_rate
echo "onehop: sendmail x$PARALLEL" >&2
onehop_case "onehop sendmail, $PARALLEL in parallel" par "$BIN/sendmail" -C "$oh" -f bench@a.test rcpt@b.test
oh_par=$last_rate
echo "onehop: onehop-queue one-shot sequential" >&2
msg_saved=$msg; msg=$WORK/message.rec
onehop_case "onehop-queue one-shot (no sendmail), sequential" seq "$BIN/onehop-queue" -C "$oh"
msg=$msg_saved
echo "onehop: onehop-queue --server" >&2
oh_server_case

# ------------------------------------------------------------------ Postfix
pf=$WORK/postfix
pf_down() { pf_stop "$pf"; sleep 1; }

# no smtpd; every transport discards: only the way into the queue is timed
pf_setup() {
    pf_require
    pf_create "$pf" "" <<EOF
default_transport = discard
local_transport = discard
relay_transport = discard
EOF
}

# wait until Postfix has processed everything (maildrop and queues empty)
pf_drain() {
    for _ in $(seq 600); do
        [ "$(pf_queued "$pf")" -eq 0 ] && return 0
        sleep 0.2
    done
    echo "inject.sh: Postfix did not drain its queue" >&2
}

pf_case() {
    name=$1; mode=$2; shift 2
    median_of_runs pf_drain "$mode" "$@"
    pf_drain
    # count: the whole Postfix under strace, plus the sendmail loop
    pf_down
    strace -f -c -o "$WORK/strace-pf.txt" -e trace=fsync,fdatasync postfix -c "$pf/etc" start \
        >/dev/null 2>&1 &
    spid=$!
    sleep 3
    strace_loop "$WORK/strace.txt" "$@"
    pf_drain
    pf_down
    wait "$spid" 2>/dev/null || true
    for _ in $(seq 100); do [ -s "$WORK/strace-pf.txt" ] && break; sleep 0.1; done
    total=$(( $(fsyncs "$WORK/strace.txt") + $(fsyncs "$WORK/strace-pf.txt") ))
    pf_start "$pf"
    sleep 1
    row "$name" "$(rate "$s")" "$(per_msg "$total")" "$s s (runs:$times)"
}

if [ "$(id -u)" -eq 0 ]; then
    pf_setup
    pf_start "$pf"
    sleep 1
    trap pf_down EXIT
    trap 'exit 143' INT TERM
    echo "postfix: sendmail sequential" >&2
    pf_case "Postfix $(pf_version) sendmail, sequential" seq \
        /usr/sbin/sendmail -C "$pf/etc" -f bench@a.test rcpt@b.test
    pf_seq=$last_rate
    echo "postfix: sendmail x$PARALLEL" >&2
    pf_case "Postfix sendmail, $PARALLEL in parallel" par \
        /usr/sbin/sendmail -C "$pf/etc" -f bench@a.test rcpt@b.test
    pf_par=$last_rate
    pf_down
    trap - EXIT
else
    row "Postfix" "skipped" "-" "needs root"
fi

# ------------------------------------------------------------------- report
echo
echo "$MESSAGES messages of $(wc -c < "$msg") bytes, 1 recipient; median of $RUNS runs;"
echo "fsyncs counted over $COUNT messages of each case under strace;"
echo "$(nproc) CPUs, $(uname -r), queue on $(df -T "$WORK" | awk 'NR==2 { print $2 }')"
# the injection programs' linking (INSTALL "Static injection programs")
if grep -q "ld-linux" "$BIN/sendmail"; then linking="dynamically linked"; else linking="statically linked"; fi
echo "onehop's sendmail and onehop-queue: $linking"
echo
echo "| case | messages/s | fsync+fdatasync per message | time |"
echo "|---|---|---|---|"
cat "$results"
if [ -n "${pf_seq:-}" ]; then
    echo
    awk -v a="$oh_seq" -v b="$pf_seq" -v c="$oh_par" -v d="$pf_par" 'BEGIN {
        printf "onehop / Postfix: sequential %.1fx, %s in parallel %.1fx\n", a / b, "'"$PARALLEL"'", c / d }'
fi
