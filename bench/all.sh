#!/bin/sh
# bench/all.sh — every benchmark against its peer in one run (`make bench`),
# then bench/RESULTS.md's generated sections rewritten.
#
#   bench/all.sh [BIN]           BIN: onehop's programs (default <repo>/bin); as root
#
# Environment: RUNS (default 3: every figure is a median of RUNS runs, the
# two systems alternated), QUICK=1 (a fast check: RUNS=1 and small loads;
# RESULTS.md is then left alone unless RESULTS is set), RESULTS (the file
# to rewrite, default bench/RESULTS.md; empty: none), ONLY (a subset of
# "latency relay remote inject dns"), BUDGET (seconds for the whole run,
# default 2400; each step gets at most what is left, then `timeout` stops
# it and its section says so), WORK (default /tmp/bench-all).
#
# The steps, in this order (issue 13's first, so that a budget cut takes
# the older figures), each against Debian's Postfix (a private instance,
# bench/lib/postfix.sh) or unbound, in the same run:
#   latency  bench/latency/run.sh  the 250 after DATA -> the sink, per message
#   relay    bench/relay/run.sh    smtp-source -> MTA -> smtp-sink
#   remote   bench/remote/run.sh   delivery of queued messages to a sink
#   inject   bench/inject.sh       sendmail / onehop-queue into the queue
#   dns      bench/dns/run.sh      onehop-dnscache against unbound's cache
# The loads are sized so that RUNS=3 ends within 40 minutes on the shared
# 2-core machine under a load average of 10 (the sizes are in each step's
# command, printed and recorded).
# Each step's output goes to WORK/STEP.out (tables) and WORK/STEP.err
# (progress); /proc/loadavg is sampled every 10 s meanwhile. Then
# bench/results.py writes, between the markers <!-- bench:NAME:begin -->
# and <!-- bench:NAME:end --> of RESULTS.md, the machine, the versions, the
# exact commands, each step's tables and every figure against its target,
# and prints the summary. Text outside the markers is never touched.
# Every process a step starts is stopped by that step (its EXIT trap, also
# on timeout's TERM); nothing else is stopped here.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$top/bin}" && pwd)
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then RUNS=${RUNS:-1}; else RUNS=${RUNS:-3}; fi
if [ "$QUICK" = 1 ] && [ -z "${RESULTS+set}" ]; then RESULTS=""; fi
RESULTS=${RESULTS-$top/bench/RESULTS.md}
ONLY=${ONLY:-"latency relay remote inject dns"}
BUDGET=${BUDGET:-2400}
WORK=${WORK:-/tmp/bench-all}
PY=/usr/bin/python3

[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (the private Postfix needs it)" >&2; exit 1; }
# shellcheck source=bench/lib/common.sh
. "$top/bench/lib/common.sh"
fresh_dir "$WORK"

if [ "$QUICK" = 1 ]; then
    INJECT="MESSAGES=200 COUNT_MESSAGES=50"
    DNS="NAMES=5000 RUN_SECONDS=1"
    REMOTE="MESSAGES=500"
    RELAY="LOADS='500:1:20 200:5:50' IDLE=500"
    LATENCY="MESSAGES=50"
else
    INJECT="MESSAGES=500 COUNT_MESSAGES=200"
    DNS="NAMES=20000 RUN_SECONDS=3"
    REMOTE="MESSAGES=2000"
    RELAY=""
    LATENCY="MESSAGES=200"
fi

# the machine and the versions, for the report
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
    echo "cores=$(nproc)"
    echo "memory=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "disk=$(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')$(
        d=$(df "$WORK" | awk 'NR == 2 { print $1 }' | sed 's|/dev/||; s/[0-9]*$//')
        [ -e "/sys/block/$d/queue/rotational" ] &&
            echo " (/sys/block/$d: rotational=$(cat "/sys/block/$d/queue/rotational"))")"
    echo "kernel=$(uname -sr)"
    echo "onehop=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "postfix=$(postconf -d -h mail_version 2>/dev/null || echo missing)"
    echo "unbound=$(unbound -V 2>/dev/null | sed -n 's/^Version //p')"
    echo "runs=$RUNS"
    echo "quick=$QUICK"
    echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} > "$WORK/meta"

# load average every 10 s while the steps run
(
    while :; do
        echo "$(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)" >> "$WORK/load"
        sleep 10
    done
) &
load_pid=$!
trap 'kill "$load_pid" 2>/dev/null || true' EXIT
trap 'exit 143' INT TERM

started=$(date +%s)
# step NAME CAP ENV SCRIPT: the step under `timeout`, at most CAP seconds
# and at most what is left of BUDGET
step() {
    name=$1 cap=$2 env=$3 script=$4
    case " $ONLY " in *" $name "*) ;; *) return 0 ;; esac
    left=$((BUDGET - ($(date +%s) - started)))
    [ "$left" -lt "$cap" ] && cap=$left
    bin=${BIN#"$top"/}
    cmd="$env RUNS=$RUNS WORK=/tmp/bench-$name $script $bin"
    [ "$name" = dns ] && cmd="$env ROUNDS=$RUNS $script"
    cmd=${cmd# }
    echo "bench: $name: $cmd (at most ${cap} s)" >&2
    echo "$name|$cmd" >> "$WORK/commands"
    if [ "$cap" -le 0 ]; then
        echo "skipped: the budget of $BUDGET s was used up" > "$WORK/$name.status"
        return 0
    fi
    t0=$(date +%s)
    rc=0
    (cd "$top" && eval "timeout --kill-after=30 $cap env $cmd") \
        > "$WORK/$name.out" 2> "$WORK/$name.err" || rc=$?
    t1=$(date +%s)
    if [ "$rc" -eq 0 ]; then
        echo "ok $((t1 - t0)) s" > "$WORK/$name.status"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "stopped by the time limit after $((t1 - t0)) s" > "$WORK/$name.status"
    else
        echo "failed (exit $rc) after $((t1 - t0)) s: $(tail -3 "$WORK/$name.err" | tr '\n' ' ')" \
            > "$WORK/$name.status"
    fi
    echo "bench: $name: $(cat "$WORK/$name.status")" >&2
}

step latency 300 "$LATENCY" bench/latency/run.sh
step relay 900 "$RELAY" bench/relay/run.sh
step remote 900 "$REMOTE" bench/remote/run.sh
step inject 900 "$INJECT" bench/inject.sh
step dns 600 "$DNS" bench/dns/run.sh

kill "$load_pid" 2>/dev/null || true
echo "end=$(date -u '+%H:%M UTC')" >> "$WORK/meta"
echo "seconds=$(($(date +%s) - started))" >> "$WORK/meta"
"$PY" "$top/bench/results.py" "$WORK" "$RESULTS"
