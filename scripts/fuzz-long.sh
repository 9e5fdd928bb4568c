#!/bin/bash
# fuzz-long.sh [--table] [TARGET...] — long libFuzzer runs, recorded per target.
#
# Runs each target (NAME of tests/fuzz/fuzz_NAME.c; none given: every built
# target, the network-facing parsers first) for FUZZ_SECONDS (default 1800),
# FUZZ_JOBS (default 2) at a time, each under `nice -n 19` so that it takes
# only idle CPU. The working corpus lives outside the repo, in
# FUZZ_WORK/corpus/NAME (default /tmp/fuzz-work), seeded from
# tests/fuzz/corpus/NAME and kept between runs, so a later run continues
# where this one stopped.
#
# Per target it records, in FUZZ_WORK/results/NAME.txt (key=value lines):
# wall and CPU seconds (user+system, from /usr/bin/time), executions and
# execs/s (libFuzzer's final stats), the last cov: and ft: counters, the
# working corpus size, the crash/leak/timeout/oom artifacts (in
# FUZZ_WORK/artifacts/NAME/) and the exit status. Then, unless FUZZ_MERGE=0,
# it minimises the working corpus into tests/fuzz/corpus/NAME with
# `-set_cover_merge=1 -use_counters=0`: the seeds already there stay, an
# input is added only when it reaches an edge they do not.
#
# FUZZ_DEADLINE (epoch seconds): no run goes past it (each run's time is cut
# to what is left; a target with less than 60 s left is not started). A run
# stopped early with SIGINT (kill -INT on the fuzzer's pid) still prints its
# figures and is recorded as interrupted.
# --table prints the results as a Markdown table; --record NAME... records
# (and merges) again from the logs of the last runs.
# FUZZ_BUILD: where the targets are (default build/fuzz; `make fuzz-build`).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
fb=${FUZZ_BUILD:-$top/build/fuzz}
secs=${FUZZ_SECONDS:-1800}
njobs=${FUZZ_JOBS:-2}
work=${FUZZ_WORK:-/tmp/fuzz-work}
deadline=${FUZZ_DEADLINE:-0}
merge=${FUZZ_MERGE:-1}
rss=${FUZZ_RSS_MB:-1024}
order="smtpd relay dns_answer dnsproto remote mxorder headers addr inject channel ipc local
       master_records router_ctl clean bounce queuefile journal state_index conf routes sites
       aliases local_forward maildirsize routing nexthop json"

field() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

table() {
    echo "| target | date (UTC) | commit | wall s | CPU s | executions | execs/s | cov | ft |" \
         "corpus (work) | corpus (repo) | crashes | status |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for r in "$work"/results/*.txt; do
        [ -e "$r" ] || continue
        echo "| $(field "$r" name) | $(field "$r" date) | $(field "$r" commit) |" \
             "$(field "$r" wall) | $(field "$r" cpu) | $(field "$r" execs) | $(field "$r" eps) |" \
             "$(field "$r" cov) | $(field "$r" ft) | $(field "$r" corpus_work) |" \
             "$(field "$r" corpus_repo) | $(field "$r" crashes) | $(field "$r" status) |"
    done
}

run_one() {
    local name=$1 bin=$fb/fuzz_$1
    local wc=$work/corpus/$1 art=$work/artifacts/$1 log=$work/logs/$1.log
    local seeds=$top/tests/fuzz/corpus/$1
    local t=$secs now
    now=$(date +%s)
    if [ "$deadline" -gt 0 ] && [ $((deadline - now)) -lt "$t" ]; then t=$((deadline - now)); fi
    if [ "$t" -lt "$secs" ] && [ "$t" -lt 60 ]; then
        echo "skip fuzz_$name: not started, deadline"
        return 0
    fi
    mkdir -p "$wc" "$art" "$seeds"
    cp -n "$seeds"/* "$wc"/ 2>/dev/null
    {
        echo "date=$(date -u '+%Y-%m-%d %H:%M')"
        echo "commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null)"
        echo "seconds=$t"
    } > "$log.start"
    echo "run  fuzz_$name for ${t}s (log: $log)"
    nice -n 19 /usr/bin/time -f '%e %U %S' -o "$log.time" \
        "$bin" -max_total_time="$t" -print_final_stats=1 -timeout=10 -rss_limit_mb="$rss" \
        -artifact_prefix="$art/" "$wc" > "$log" 2>&1
    echo "rc=$?" >> "$log.start"
    record "$name"
}

# record NAME: the results of the last run of NAME from its logs, then the
# working corpus minimised into the repo's (unless FUZZ_MERGE=0).
record() {
    local name=$1 bin=$fb/fuzz_$1
    local wc=$work/corpus/$1 art=$work/artifacts/$1 log=$work/logs/$1.log
    local res=$work/results/$1.txt seeds=$top/tests/fuzz/corpus/$1
    local rc wall cpu execs eps last cov ft crashes status nwork
    if [ ! -e "$log.start" ] && [ -e "$res" ]; then
        # a run recorded by an older fuzz-long.sh: take its start from its results
        {
            echo "date=$(field "$res" date)"; echo "commit=$(field "$res" commit)"
            echo "seconds=$(field "$res" seconds)"
            case "$(field "$res" status)" in ok) echo rc=0 ;; *rc=*) field "$res" status | sed 's/.*rc=/rc=/' ;; esac
        } > "$log.start"
    fi
    rc=$(field "$log.start" rc)
    # GNU time puts "Command exited with non-zero status N" first: the figures are last
    wall=$(tail -n 1 "$log.time" 2>/dev/null | awk '{printf "%.0f", $1}')
    cpu=$(tail -n 1 "$log.time" 2>/dev/null | awk '{printf "%.0f", $2 + $3}')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    mkdir -p "$art" "$seeds"
    crashes=$(find "$art" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    nwork=$(find "$wc" -maxdepth 1 -type f | wc -l)
    if [ "$crashes" -gt 0 ]; then
        status="FAIL: $crashes artifacts in $art"
    elif [ "$rc" = 0 ]; then
        status=ok
    elif [ "$rc" = 72 ]; then
        status="interrupted (SIGINT), no crash"
    else
        status="FAIL rc=$rc"
    fi
    local repo_before repo_after repo_kb
    repo_before=$(find "$seeds" -maxdepth 1 -type f | wc -l)
    if [ "$merge" = 1 ]; then
        # a greedy set cover of the edges (not of libFuzzer's counter
        # features, which would keep a thousand files): the seeds stay, a
        # working input joins them only for an edge they do not reach
        nice -n 19 "$bin" -set_cover_merge=1 -use_counters=0 -timeout=10 -rss_limit_mb="$rss" \
            "$seeds" "$wc" > "$work/logs/$name.merge.log" 2>&1 || status="$status, merge failed"
    fi
    repo_after=$(find "$seeds" -maxdepth 1 -type f | wc -l)
    repo_kb=$(du -sk --apparent-size "$seeds" | awk '{print $1}')
    {
        echo "name=$name"; echo "date=$(field "$log.start" date)"
        echo "commit=$(field "$log.start" commit)"; echo "seconds=$(field "$log.start" seconds)"
        echo "wall=$wall"; echo "cpu=$cpu"; echo "execs=$execs"; echo "eps=$eps"
        echo "cov=$cov"; echo "ft=$ft"; echo "corpus_work=$nwork"
        echo "corpus_repo=$repo_after files, ${repo_kb} KB (+$((repo_after - repo_before)))"
        echo "crashes=$crashes"; echo "status=$status"
    } > "$res"
    echo "done fuzz_$name: $status, ${wall}s wall, ${cpu}s CPU, ${execs:-?} executions" \
         "(${eps:-?}/s), cov $cov ft $ft, corpus $nwork, repo corpus $repo_before -> $repo_after"
}

if [ "${1:-}" = --table ]; then table; exit 0; fi
if [ "${1:-}" = --record ]; then
    shift
    for n in "$@"; do record "$n"; done
    exit 0
fi
mkdir -p "$work/results" "$work/logs"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for n in $order; do [ -x "$fb/fuzz_$n" ] && targets+=("$n"); done
    for b in "$fb"/fuzz_*; do
        n=${b##*/fuzz_}
        case "$n" in *.*) continue ;; esac
        case " $(echo $order) " in *" $n "*) ;; *) [ -x "$b" ] && targets+=("$n") ;; esac
    done
fi
for n in "${targets[@]}"; do
    [ -x "$fb/fuzz_$n" ] || { echo "fuzz-long: no $fb/fuzz_$n (make fuzz-build)" >&2; exit 2; }
done

for n in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$njobs" ]; do wait -n; done
    run_one "$n" &
    sleep 1
done
wait
failed=$(grep -l '^status=FAIL' "$work"/results/*.txt 2>/dev/null | wc -l)
echo "fuzz-long: ${#targets[@]} targets, $failed with a failure (results: $work/results)"
[ "$failed" -eq 0 ]
