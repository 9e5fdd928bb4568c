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
#       and peak resident memory (/usr/bin/time -v);
#   (c) the same with N one-message files (statebench make-files: the queue
#       of N one-shot injections, taken), the case where the files, not the
#       messages, are many: a frozen file costs no memory (the checkpoint's
#       index on disk, queue/state_index.h).
# usage: bench/state_bench.sh [BUILD] [N...]
#   BUILD defaults to build/normal (make tools BUILD=...; its bin/ must hold
#   onehop-queue), N to "100000 1000000". Work files go to $TMPDIR (/tmp).
#   KINDS="outcomes server one" (the default) chooses the parts.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build/normal}
[ $# -gt 0 ] && shift
sizes=${*:-100000 1000000}
kinds=${KINDS:-outcomes server one}
has() { case " $kinds " in *" $1 "*) return 0 ;; esac; return 1; }
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

if has outcomes; then
echo "== (a) outcomes: 20 callers, 100000 outcomes"
"$bench" outcomes "$work/a" 20 100000
rm -rf "$work/a"
fi
if has outcomes && command -v strace >/dev/null; then
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
    grep -h "in_memory" "$work/out" "$work/time" >&2 || true
    echo "$(first_due "$work/out") $(peak "$work/time")"
}

# Three first starts (state/ removed: it learns every file) and three
# second starts (page cache dropped: it replays the checkpoint and its index).
startups() {
    for kind in first second; do
        times=""; peaks=""
        for run in 1 2 3; do
            if [ $kind = first ]; then
                rm -rf "$1/state"   # knows nothing: learns every file
                set -- "$1" $(start_once "$1" checkpoint)
            else
                sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
                set -- "$1" $(start_once "$1" "")   # replays the checkpoint
            fi
            echo "$kind start, run $run: first due after $2 s, peak RSS $3 kB"
            times="$times $2"; peaks="$peaks $3"
            set -- "$1"
        done
        echo "$kind start: median first due $(median3 $times) s, median peak RSS $(median3 $peaks) kB"
    done
    echo "state/ on disk: $(du -sh "$1/state" | cut -f1)"
    ls -l "$1/state"
}

for n in $sizes; do
    has server || continue
    echo "== (b) start-up with $n queued messages (3 runs of each start; medians)"
    conf="$work/conf$n"
    /usr/bin/python3 -c "import sys; sys.path.insert(0, '$top/tests/integration'); \
import injproto; injproto.make_config('$conf')"
    /usr/bin/python3 "$top/bench/server_driver.py" "$queue_bin" "$conf" "$n" 20 500
    "$bench" take-all "$conf/queue"
    echo "queue on disk: $(du -sh "$conf/queue" | cut -f1), files: $(find "$conf/queue/active" -type f | wc -l)"
    startups "$conf/queue"
    rm -rf "$conf"
done

for n in $sizes; do
    has one || continue
    echo "== (c) start-up with $n one-message files (3 runs of each start; medians)"
    conf="$work/one$n"
    /usr/bin/python3 -c "import sys; sys.path.insert(0, '$top/tests/integration'); \
import injproto; injproto.make_config('$conf')"
    "$bench" make-files "$conf/queue" "$n"
    echo "queue on disk: $(du -sh "$conf/queue" | cut -f1), files: $(find "$conf/queue/active" -type f | wc -l)"
    startups "$conf/queue"
    rm -rf "$conf"
done
