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
work=$(mktemp -d)
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
first_due() { sed -n 's/.*first_due=\([0-9.]*\).*/\1/p' "$1"; }
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

# One start under /usr/bin/time -v: "first_due_seconds peak_kB".
start_once() {
    /usr/bin/time -v "$bench" startup "$1" $2 > "$work/out" 2> "$work/time"
    grep -h "recipients_in_memory" "$work/out" "$work/time" | head -n 1 >&2 || true
    echo "$(first_due "$work/out") $(peak "$work/time")"
}

for n in $sizes; do
    echo "== (b) start-up with $n queued messages (3 runs of each start; medians)"
    conf="$work/conf$n"
    /usr/bin/python3 -c "import sys; sys.path.insert(0, '$top/tests/integration'); \
import injproto; injproto.make_config('$conf')"
    /usr/bin/python3 "$top/bench/server_driver.py" "$queue_bin" "$conf" "$n" 20 500
    "$bench" take-all "$conf/queue"
    echo "queue on disk: $(du -sh "$conf/queue" | cut -f1), files: $(find "$conf/queue/active" -type f | wc -l)"
    for kind in first second; do
        times=""; peaks=""
        for run in 1 2 3; do
            if [ $kind = first ]; then
                rm -rf "$conf/queue/state"   # knows nothing: learns every file
                set -- $(start_once "$conf/queue" checkpoint)
            else
                sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
                set -- $(start_once "$conf/queue" "")   # replays the checkpoint
            fi
            echo "$kind start, run $run: first due after $1 s, peak RSS $2 kB"
            times="$times $1"; peaks="$peaks $2"
        done
        echo "$kind start: median first due $(median3 $times) s, median peak RSS $(median3 $peaks) kB"
    done
    echo "state/ on disk: $(du -sh "$conf/queue/state" | cut -f1)"
    rm -rf "$conf"
done
