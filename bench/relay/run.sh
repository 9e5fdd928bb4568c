#!/bin/sh
# bench/relay/run.sh — SMTP relay: Postfix's smtp-source -> MTA (SMTP in,
# queue with fsync before every 250, route, SMTP out) -> Postfix's
# smtp-sink, onehop against a private Postfix in the same run (issue 13
# "Benchmark").
#
#   bench/relay/run.sh [BIN]     BIN: directory of onehop's programs (default <repo>/bin)
#
# Environment: RUNS (default 3; medians reported), WORK (default
# /tmp/onehop-relay), LOADS (default "5000:1:20 2000:5:50": messages,
# recipients per message, smtp-source sessions), IDLE (default 5000: idle
# SMTP sessions held open for onehop's memory figure; 0 skips it).
#
# For each load and each run of each system: a fresh queue, the MTA started
# and ready, then `smtp-source -l 4096 -m M -r R -s S` against its SMTP port;
# the clock runs from smtp-source's start until the sink (`smtp-sink -c`,
# its running mesg= counter) has every message AND the MTA's queue is empty.
# Reported per load: wall time, messages/s, CPU seconds of the MTA's whole
# process tree (bench/remote/treecpu.py, user + system, children included)
# per message, and the peak PSS of that tree (bench/relay/pss.py, sampled
# every 0.1 s). onehop: smtp_listen on 127.0.0.1, relayhost = the sink,
# its defaults otherwise, run as nobody (SPEC 7: everything as that user).
# Postfix: a private instance (`postfix -c DIR`), smtpd on 127.0.0.1,
# relayhost = the sink, its defaults otherwise. Both keep every fsync.
# Needs root (Postfix). Prints Markdown tables.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${1:-$top/bin}" && pwd)
RUNS=${RUNS:-3}
WORK=${WORK:-/tmp/onehop-relay}
LOADS=${LOADS:-"5000:1:20 2000:5:50"}
IDLE=${IDLE:-5000}
PY=/usr/bin/python3

for p in onehop onehop-queue onehop-master onehop-router onehop-remote onehop-smtpd; do
    [ -x "$BIN/$p" ] || { echo "relay: $BIN/$p missing: run make first" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "relay: run as root (the private Postfix needs it)" >&2; exit 1; }
command -v smtp-sink >/dev/null || { echo "relay: smtp-sink (Debian postfix) is needed" >&2; exit 1; }

# shellcheck source=bench/lib/common.sh
. "$top/bench/lib/common.sh"
# shellcheck source=bench/lib/postfix.sh
. "$top/bench/lib/postfix.sh"
fresh_dir "$WORK"

SINK=$(free_port)
smtp-sink -c -u nobody "127.0.0.1:$SINK" 1000 > "$WORK/sink.out" 2>&1 &
sink_pid=$!
oh=$WORK/onehop
pf=$WORK/postfix
stop_all_on_exit
sleep 0.5

# measure MASTER_PID PORT M R S QUEUE_DIRS...: prints "seconds cpu_seconds peak_pss_kib"
measure() {
    master=$1 port=$2 m=$3 r=$4 s=$5; shift 5
    "$PY" "$top/bench/relay/pss.py" "$master" "$WORK/pss.out" &
    pss_pid=$!
    base=$(sink_count "$WORK/sink.out")
    c0=$(treecpu "$master")
    t0=$(now)
    smtp-source -c -l 4096 -m "$m" -r "$r" -s "$s" -f bench@a.test -t rcpt@b.test \
        "127.0.0.1:$port" > "$WORK/source.out" 2>&1
    wait_done "$WORK/sink.out" $((base + m)) "$@"
    t1=$(now)
    c1=$(treecpu "$master")
    kill -TERM "$pss_pid"
    wait "$pss_pid" 2>/dev/null || true
    echo "$t0 $t1 $c0 $c1 $(cat "$WORK/pss.out")" | awk '{ printf "%.3f %.2f %d\n", $2 - $1, $4 - $3, $5 }'
}

# ------------------------------------------------------------------ onehop
oh_up() {
    OH_PORT=$(free_port)
    echo "smtpd_client_connection_limit = 10000" |
        oh_relay "$oh" "127.0.0.1:$OH_PORT" "[127.0.0.1]:$SINK"
}

oh_run() {
    oh_up
    measure "$(oh_master_pid "$oh")" "$OH_PORT" "$@" "$oh/queue/incoming" "$oh/queue/active"
    oh_stop "$oh"
}

# ------------------------------------------------------------------ Postfix
pf_up() {
    PF_PORT=$(free_port)
    pf_relay "$pf" "127.0.0.1:$PF_PORT" "[127.0.0.1]:$SINK"
}

pf_run() {
    pf_up
    measure "$(pf_master_pid "$pf")" "$PF_PORT" "$@" \
        "$pf/spool/maildrop" "$pf/spool/incoming" "$pf/spool/active" "$pf/spool/deferred"
    pf_stop "$pf"
    sleep 1
}

# idle SYSTEM: peak PSS (KiB) of the tree while IDLE sessions are held open
idle_sessions() {
    "$PY" - "$1" "$IDLE" <<'PYEOF'
import select, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
held, refused = [], 0
for i in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"EHLO idle.test\r\n")
        held.append(s)
    except OSError:
        refused += 1
greeted, deadline = 0, time.time() + 10
poll, byfd = select.poll(), {s.fileno(): s for s in held}
for fd in byfd:
    poll.register(fd, select.POLLIN)
while byfd and time.time() < deadline:  # one bounded wait for every greeting
    for fd, _ in poll.poll(200):
        poll.unregister(fd)
        try:
            greeted += byfd.pop(fd).recv(4096).startswith(b"220")
        except OSError:
            pass
print(greeted, refused)
sys.stdout.flush()
time.sleep(2)  # still held while the last samples are taken
for s in held:
    s.close()
PYEOF
}

idle_run() { # MASTER_PID PORT
    "$PY" "$top/bench/relay/pss.py" "$1" "$WORK/pss.out" &
    pss_pid=$!
    res=$(idle_sessions "$2")
    kill -TERM "$pss_pid"
    wait "$pss_pid" 2>/dev/null || true
    echo "$res $(cat "$WORK/pss.out")"
}

# ------------------------------------------------------------------ runs
ulimit -n 65536 2>/dev/null || true
report() { # NAME M TIMES CPUS PSSES
    t=$(echo "$3" | median); c=$(echo "$4" | median); p=$(echo "$5" | median)
    echo "$1 $2 $t $c $p" | awk '{ printf "| %s | %.0f | %.2f s | %.3f ms | %.1f MiB |", $1, $2 / $3, $3, $4 * 1000 / $2, $5 / 1024 }'
    echo " $3 |"
}

for load in $LOADS; do
    m=${load%%:*}; rest=${load#*:}; r=${rest%%:*}; s=${rest#*:}
    oh_t=""; oh_c=""; oh_p=""; pf_t=""; pf_c=""; pf_p=""
    i=0
    while [ $i -lt "$RUNS" ]; do
        echo "load $load run $((i + 1)): onehop" >&2
        set -- $(oh_run "$m" "$r" "$s"); oh_t="$oh_t $1"; oh_c="$oh_c $2"; oh_p="$oh_p $3"
        echo "load $load run $((i + 1)): Postfix" >&2
        set -- $(pf_run "$m" "$r" "$s"); pf_t="$pf_t $1"; pf_c="$pf_c $2"; pf_p="$pf_p $3"
        i=$((i + 1))
    done
    echo
    echo "$m messages of 4 KiB, $r recipient(s) each, $s smtp-source sessions, medians of $RUNS:"
    echo
    echo "| system | messages/s | wall time | CPU per message (all processes) | peak PSS (all processes) | times |"
    echo "|---|---|---|---|---|---|"
    report onehop "$m" "$oh_t" "$oh_c" "$oh_p"
    report "Postfix-$(pf_version)" "$m" "$pf_t" "$pf_c" "$pf_p"
    echo "$oh_t|$pf_t|$oh_c|$pf_c|$oh_p|$pf_p" | awk -F'|' '
        function med(s,  a, n, i, j, t) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }; return a[int((n + 1) / 2)] }
        { printf "\nratios onehop/Postfix: messages/s %.2fx, CPU per message %.2fx, peak PSS %.2fx\n", med($2) / med($1), med($3) / med($4), med($5) / med($6) }'
done

if [ "$IDLE" -gt 0 ]; then
    echo
    echo "$IDLE idle SMTP sessions (EHLO sent, then silent), peak PSS of all processes:"
    echo
    echo "| system | greeted | refused | peak PSS |"
    echo "|---|---|---|---|"
    oh_up
    set -- $(idle_run "$(oh_master_pid "$oh")" "$OH_PORT")
    echo "| onehop | $1 | $2 | $(echo "$3" | awk '{ printf "%.1f MiB", $1 / 1024 }') |"
    oh_stop "$oh"
    echo
    echo "(Postfix is not measured here: with its default_process_limit of 100 it holds"
    echo "100 sessions, one smtpd process each, and leaves the rest in the listen queue.)"
fi
echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
