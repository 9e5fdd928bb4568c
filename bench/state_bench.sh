#!/bin/sh
# state_bench.sh — the router's state side (queue/state.h), results in
# bench/RESULTS.md "State side":
#   (a) 100,000 recipient outcomes recorded by 20 concurrent callers
#       (tests/tools/statebench outcomes): outcomes/s and fdatasyncs per
#       outcome, counted by the journal and checked with strace -c -f;
#   (b) start-up of the state owner with N queued messages made by
#       onehop-queue --server group commits (bench/server_driver.py, 20
#       writers, 500-byte messages, one recipient each), taken into active/,
#       then: the first start (learns every file) and a second start (replays
#       the checkpoint the first one wrote): time to the first due message
#       and peak resident memory (/usr/bin/time -v).
# usage: bench/state_bench.sh [BUILD] [N...]
#   BUILD defaults to build/normal (make tools BUILD=...; its bin/ must hold
#   onehop-queue), N to "100000 1000000". Work files go to $TMPDIR (/tmp).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build/normal}
[ $# -gt 0 ] && shift
sizes=${*:-100000 1000000}
bench="$top/$build/tools/statebench"
queue_bin="$top/$build/bin/onehop-queue"
[ -x "$bench" ] && [ -x "$queue_bin" ] || { echo "build first: make BUILD=$build all tools" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/onehop-state-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== machine"
uname -srm
grep -m1 "model name" /proc/cpuinfo || true
echo "cpus: $(nproc)  memory: $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
df -T "$work" | tail -n 1 | awk '{print "file system of the work dir: " $2}'

echo "== (a) outcomes: 20 callers, 100000 outcomes"
"$bench" outcomes "$work/a" 20 100000
rm -rf "$work/a"
if command -v strace >/dev/null; then
    echo "-- the same under strace -c -f (20000 outcomes; fdatasync and fsync calls):"
    strace -c -f -e trace=fdatasync,fsync "$bench" outcomes "$work/a" 20 20000 2>&1 |
        grep -E "outcomes=|fdatasync|fsync|total"
    rm -rf "$work/a"
fi

peak() { sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1"; }

for n in $sizes; do
    echo "== (b) start-up with $n queued messages"
    conf="$work/conf$n"
    /usr/bin/python3 -c "import sys; sys.path.insert(0, '$top/tests/integration'); \
import injproto; injproto.make_config('$conf')"
    /usr/bin/python3 "$top/bench/server_driver.py" "$queue_bin" "$conf" "$n" 20 500
    "$bench" take-all "$conf/queue"
    echo "queue on disk: $(du -sh "$conf/queue" | cut -f1), files: $(find "$conf/queue/active" -type f | wc -l)"
    /usr/bin/time -v "$bench" startup "$conf/queue" checkpoint 2> "$work/time1"
    echo "first start (learns every file): peak RSS $(peak "$work/time1") kB"
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    /usr/bin/time -v "$bench" startup "$conf/queue" 2> "$work/time2"
    echo "second start (replays the checkpoint, cold page cache): peak RSS $(peak "$work/time2") kB"
    echo "state/ on disk: $(du -sh "$conf/queue/state" | cut -f1)"
    rm -rf "$conf"
done
