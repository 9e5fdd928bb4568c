#!/bin/sh
# bench/profile/ingest-cpu.sh — CPU per relayed message for each onehop
# daemon, user and system apart, on the relay load of bench/relay/run.sh
# (smtp-source -> onehop -> smtp-sink; same configuration, same approach,
# onehop only: this is a profile, not the side-by-side benchmark).
#
#   bench/profile/ingest-cpu.sh [BIN]
#
# Environment: M (messages, default 5000), R (recipients, 1), S (sessions,
# 20), WORK (default /tmp/ingestperf-prof), PORT_BASE (default 32000: the
# sink on PORT_BASE, onehop's smtpd on PORT_BASE+1), STRACE (a process
# name: onehop-smtpd, queue-server, queue-clean, onehop-router,
# onehop-remote: `strace -c -f` is attached to it during the load, its
# table printed with calls per message; STRACE_ARGS replaces "-c -f", e.g.
# "-k -e trace=mmap", and the output is left in WORK/strace.out), PERF (a process name as for
# STRACE: `perf record -g` of it during the load, report in WORK/perf.txt).
#
# Per daemon: utime+stime from /proc/PID/stat (the process and its reaped
# children) read at the start of the load and just before the stop, when
# the sink has every message and the queue is empty; printed as
# microseconds of CPU per message, user and system apart.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${1:-$top/bin}" && pwd)
M=${M:-5000}; R=${R:-1}; S=${S:-20}
WORK=${WORK:-/tmp/ingestperf-prof}
PORT_BASE=${PORT_BASE:-32000}
SINK=$PORT_BASE; OH_PORT=$((PORT_BASE + 1))
PY=/usr/bin/python3
HZ=$(getconf CLK_TCK)

rm -rf "$WORK"; mkdir -p "$WORK"; chmod 755 "$WORK"
oh=$WORK/onehop
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
smtp-sink -c -u nobody "127.0.0.1:$SINK" 1000 > "$WORK/sink.out" 2>&1 &
sink_pid=$!
tracer=""
cleanup() {
    [ -n "$tracer" ] && kill "$tracer" 2>/dev/null || true
    as_nobody "$BIN/onehop" -C "$oh" stop >/dev/null 2>&1 || true
    kill "$sink_pid" 2>/dev/null || true
}
trap cleanup EXIT
sink_count() {
    c=$(tr '\r' '\n' < "$WORK/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
    echo "${c:-0}"
}
mkdir -p "$oh"
cat > "$oh/onehop.conf" <<CONF
myhostname = bench.onehop.test
local_domains = bench.onehop.test
smtp_listen = 127.0.0.1:$OH_PORT
queue_dir = queue
run_dir = run
log = maillog
dns_servers = 127.0.0.1:9
relayhost = [127.0.0.1]:$SINK
local_users = any
smtpd_client_connection_limit = 10000
CONF
: > "$oh/routes"; : > "$oh/sites"; : > "$oh/aliases"
chown -R nobody:nogroup "$oh"
as_nobody "$BIN/onehop" -C "$oh" start >/dev/null
sleep 1
master=$(cat "$oh/run/master.pid")

# name PID: a short name for each daemon of the tree
daemons() {
    for p in $(pgrep -P "$master") $master; do
        cmd=$(tr '\0' ' ' < /proc/$p/cmdline)
        case "$cmd" in
        *onehop-queue*--server*) n=queue-server ;;
        *onehop-queue*--clean*) n=queue-clean ;;
        *onehop-queue*) n=onehop-queue ;;
        *) n=$(basename "${cmd%% *}") ;;
        esac
        echo "$n $p"
    done
}
ticks() { # PID: utime stime cutime cstime
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12, $13, $14, $15 }'
}
daemons > "$WORK/daemons"
while read -r n p; do echo "$n $p $(ticks "$p")"; done < "$WORK/daemons" > "$WORK/t0"
pid_of() { awk -v n="$1" '$1 == n { print $2; exit }' "$WORK/daemons"; }
if [ -n "${STRACE:-}" ]; then
    # shellcheck disable=SC2086
    strace ${STRACE_ARGS:--c -f} -o "$WORK/strace.out" -p "$(pid_of "$STRACE")" &
    tracer=$!
    sleep 0.5
fi
if [ -n "${PERF:-}" ]; then
    perf record -g -o "$WORK/perf.data" -p "$(pid_of "$PERF")" > /dev/null 2>&1 &
    tracer=$!
    sleep 0.5
fi
t0=$(date +%s.%N)
smtp-source -c -l 4096 -m "$M" -r "$R" -s "$S" -f bench@a.test -t rcpt@b.test \
    "127.0.0.1:$OH_PORT" > "$WORK/source.out" 2>&1
for _ in $(seq 12000); do
    if [ "$(sink_count)" -ge "$M" ]; then
        n=$(find "$oh/queue/incoming" "$oh/queue/active" -type f 2>/dev/null | wc -l)
        [ "$n" -eq 0 ] && break
    fi
    sleep 0.05
done
sleep 0.3 # the cleaner's last removals
t1=$(date +%s.%N)
while read -r n p; do echo "$n $p $(ticks "$p")"; done < "$WORK/daemons" > "$WORK/t1"
if [ -n "$tracer" ]; then
    kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true; tracer=""
fi
echo "messages at the sink: $(sink_count) of $M; wall $(echo "$t0 $t1" | awk '{ printf "%.2f s", $2 - $1 }'); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| daemon | user us/msg | system us/msg | total us/msg |"
echo "|---|---|---|---|"
join "$WORK/t0" "$WORK/t1" | awk -v hz="$HZ" -v m="$M" '
    { u = ($8 + $10 - $3 - $5) / hz; s = ($9 + $11 - $4 - $6) / hz
      tu += u; ts += s
      printf "| %s | %.0f | %.0f | %.0f |\n", $1, u * 1e6 / m, s * 1e6 / m, (u + s) * 1e6 / m }
    END { printf "| all onehop | %.0f | %.0f | %.0f |\n", tu * 1e6 / m, ts * 1e6 / m, (tu + ts) * 1e6 / m }'
# Group commit: each committed file is one fdatasync + one directory fsync;
# its messages are the from= lines naming its 16-character file id.
awk '/onehop\/queue\[.*: from=</ { id = $6; sub(/:$/, "", id); n++; f[substr(id, 1, 16)] = 1 }
     END { k = 0; for (x in f) k++; if (k) printf "group commit: %d messages in %d files: %.1f messages per fsync\n", n, k, n / k }' "$oh/maillog"
if [ -n "${STRACE:-}" ] && [ -n "${STRACE_ARGS:-}" ]; then
    echo; echo "strace output: $WORK/strace.out"
elif [ -n "${STRACE:-}" ]; then
    echo; echo "strace -c -f of $STRACE (calls per message):"
    awk -v m="$M" '/^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ { n = $4; name = $NF; printf "%-20s %8d %8.2f/msg\n", name, n, n / m }
                   /total/ { printf "%-20s %8d %8.2f/msg\n", "total", $3, $3 / m }' "$WORK/strace.out"
fi
if [ -n "${PERF:-}" ]; then
    perf report -i "$WORK/perf.data" --no-children --stdio --percent-limit 1.5 2>/dev/null > "$WORK/perf.txt" || true
    echo "perf report: $WORK/perf.txt"
fi
