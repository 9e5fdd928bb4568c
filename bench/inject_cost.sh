#!/bin/sh
# bench/inject_cost.sh — where one sequential injection's time goes.
#
#   bench/inject_cost.sh [BIN]     BIN: onehop's programs (default <repo>/bin)
#
# Environment: N (invocations per round, default 200), ROUNDS (default 7),
# WORK (scratch directory on the disk to measure, default /tmp/onehop-cost).
#
# Times per-message costs from a sh loop, the cases interleaved round by
# round (so that a noisy moment hits all of them) and the median round
# reported: an empty program's fork+exec (static musl when musl-gcc is
# there, and /bin/true), onehop-queue one-shot and sendmail with the queue
# on tmpfs (/dev/shm: no disk wait) and on WORK's file system. The difference
# between the two queues is the disk's fdatasync. No Postfix here: the
# side-by-side ratio is bench/inject.sh's.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$top/bin}" && pwd)
N=${N:-200}
ROUNDS=${ROUNDS:-7}
WORK=${WORK:-/tmp/onehop-cost}
SHM=/dev/shm/onehop-cost.$$
PY=/usr/bin/python3

rm -rf "$WORK" "$SHM"
mkdir -p "$WORK/run" "$SHM/run"
trap 'rm -rf "$SHM"' EXIT
for d in "$WORK" "$SHM"; do
    printf 'queue_dir = %s/queue\nrun_dir = %s/run\nlog = %s/maillog\ndaemon_dir = %s\n' \
        "$d" "$d" "$d" "$BIN" > "$d/onehop.conf"
done

# shellcheck source=bench/message.sh
. "$top/bench/message.sh"
msg=$WORK/message.eml
rec=$WORK/message.rec
make_message "$msg"
encode_message "$msg" "$rec"

empty=/bin/true
if command -v musl-gcc > /dev/null 2>&1; then
    echo 'int main(void) { return 0; }' > "$WORK/empty.c"
    musl-gcc -O2 -static -o "$WORK/empty" "$WORK/empty.c" && empty=$WORK/empty
fi

# per_msg STDIN CMD... -> microseconds per invocation over N invocations
per_msg() {
    f=$1; shift
    s=$(date +%s%N)
    i=0
    while [ $i -lt "$N" ]; do "$@" < "$f" > /dev/null; i=$((i + 1)); done
    e=$(date +%s%N)
    echo $(( (e - s) / (N * 1000) ))
}

out=$WORK/rounds.txt
: > "$out"
r=0
while [ $r -lt "$ROUNDS" ]; do
    echo "$(per_msg /dev/null "$empty") $(per_msg /dev/null /bin/true)" \
         "$(per_msg "$rec" "$BIN/onehop-queue" -C "$SHM")" \
         "$(per_msg "$rec" "$BIN/onehop-queue" -C "$WORK")" \
         "$(per_msg "$msg" "$BIN/sendmail" -C "$SHM" -f bench@a.test rcpt@b.test)" \
         "$(per_msg "$msg" "$BIN/sendmail" -C "$WORK" -f bench@a.test rcpt@b.test)" >> "$out"
    rm -rf "$WORK/queue" "$SHM/queue"
    r=$((r + 1))
done

median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] / 1000 }'; }
col() { awk -v k="$1" '{ print $k }' "$out" | median; }
fs=$(df -T "$WORK" | awk 'NR==2 { print $2 }')
if grep -q "ld-linux" "$BIN/sendmail"; then linking="dynamically linked"; else linking="statically linked"; fi

echo "$N invocations x $ROUNDS interleaved rounds, median round; $(nproc) CPUs, $(uname -r);"
echo "onehop's sendmail and onehop-queue: $linking"
echo
echo "| per message | ms |"
echo "|---|---|"
echo "| fork+exec of an empty program ($empty) from sh | $(col 1) |"
echo "| fork+exec of /bin/true from sh | $(col 2) |"
echo "| onehop-queue one-shot, queue on tmpfs (no disk wait) | $(col 3) |"
echo "| onehop-queue one-shot, queue on $fs (+ the slot's fdatasync) | $(col 4) |"
echo "| sendmail, queue on tmpfs (sh -> sendmail, which execs onehop-queue) | $(col 5) |"
echo "| sendmail, queue on $fs | $(col 6) |"
