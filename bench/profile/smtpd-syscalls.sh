#!/bin/sh
# bench/profile/smtpd-syscalls.sh — syscalls per relayed message of
# onehop-smtpd and onehop-remote (issue 13 "Benchmark", the CPU of smtpd and
# remote): runs bench/profile/relay_cpu.sh's load and attaches `strace -c -f`
# to each of the two daemons before the load starts.
#
#   bench/profile/smtpd-syscalls.sh [BIN]   BIN: onehop's programs (default <repo>/bin)
#
# Environment: as relay_cpu.sh (M, R, S; PORT0 default 32000, WORK default
# /tmp/smtpdcpu-syscalls). The CPU figures relay_cpu.sh prints for that run
# include strace's overhead: take CPU figures from a run of relay_cpu.sh
# without this script. Prints, per daemon, each syscall's count per message
# (and the total). Needs root, strace. TOOL=perf attaches `perf record -g`
# instead (WORK.DAEMON.perf.data; `perf report -i` it) and prints no counts.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${1:-$top/bin}" && pwd)
M=${M:-2000}
PORT0=${PORT0:-32000}
WORK=${WORK:-/tmp/smtpdcpu-syscalls}
export M PORT0 WORK

rm -rf "$WORK" "$WORK".*.strace "$WORK".*.perf.data
"$top/bench/profile/relay_cpu.sh" "$BIN" > "$WORK.cpu" 2>&1 &
load=$!
tracers=
stop_tracers() {
    for t in $tracers; do kill -INT "$t" 2>/dev/null || true; done
}
trap stop_tracers EXIT
# relay_cpu.sh writes WORK/cpu0 (the master's line last) and sleeps 0.5 s
# before the load starts
ready() { grep -q ' onehop-master ' "$WORK/cpu0" 2>/dev/null; }
for _ in $(seq 400); do
    ready && break
    sleep 0.02
done
ready || { echo "smtpd-syscalls: the load did not start" >&2; exit 1; }
for d in onehop-smtpd onehop-remote; do
    p=$(awk -v d="$d" '$2 == d { print $1; exit }' "$WORK/cpu0")
    [ -n "$p" ] || continue
    if [ "${TOOL:-strace}" = perf ]; then
        perf record -g -o "$WORK.$d.perf.data" -p "$p" 2>"$WORK.$d.err" &
    else
        strace -c -f -o "$WORK.$d.strace" -p "$p" 2>"$WORK.$d.err" &
    fi
    tracers="$tracers $!"
done
wait "$load" || true
stop_tracers
for t in $tracers; do wait "$t" 2>/dev/null || true; done
tracers=
cat "$WORK.cpu"
for d in onehop-smtpd onehop-remote; do
    [ -f "$WORK.$d.strace" ] || continue
    echo
    echo "$d syscalls per message (strace -c -f):"
    awk -v m="$M" '$1 ~ /^[0-9.]+$/ && NF >= 5 { n = $4; name = $NF
        if (name == "total") t = n / m; else printf "  %-16s %8.2f\n", name, n / m }
        END { printf "  %-16s %8.2f\n", "TOTAL", t }' "$WORK.$d.strace"
done
