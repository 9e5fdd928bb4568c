#!/bin/sh
# bench/profile/relay_cpu.sh — CPU per relayed message of each onehop
# process, for profiling the relay path (issue 13 "Benchmark"; the
# side-by-side figures against Postfix are bench/relay/run.sh's).
#
#   bench/profile/relay_cpu.sh [BIN]    BIN: onehop's programs (default <repo>/bin)
#
# Environment: M (messages, default 5000), R (recipients each, default 1),
# S (smtp-source sessions, default 20), PORT0 (first of the ports used,
# default 31000), WORK (default /tmp/routerperf-relay), and one optional
# tool attached to onehop-router for the load (the figures of that run
# include the tool's overhead):
#   TRACE=strace    strace -c -f: syscalls of the router, per message
#   TRACE=perf      perf record -g on the router (report: WORK/perf.data)
#   TRACE=callgrind the router started under valgrind --tool=callgrind
#                   (onehop's daemon_dir points at a wrapper; WORK/callgrind.out.*)
#
# The load is bench/relay/run.sh's: smtp-source -c -l 4096 -m M -r R -s S
# to onehop (relayhost = smtp-sink, run as nobody), the clock until the
# sink has every message and incoming/ and active/ are empty. Then, just
# before the stop, utime and stime of every onehop process
# (/proc/PID/stat, fields 14 and 15), printed per message in ms. Needs root
# (setpriv to nobody, as run.sh).
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${1:-$top/bin}" && pwd)
M=${M:-5000}
R=${R:-1}
S=${S:-20}
PORT0=${PORT0:-31000}
WORK=${WORK:-/tmp/routerperf-relay}
TRACE=${TRACE:-}
PY=/usr/bin/python3

[ "$(id -u)" -eq 0 ] || { echo "relay_cpu: run as root" >&2; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK"
chmod 755 "$WORK"
oh=$WORK/onehop
mkdir -p "$oh"
SINK=$PORT0
OH_PORT=$((PORT0 + 1))
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }

daemons=$BIN
if [ "$TRACE" = callgrind ]; then
    # a daemon_dir whose onehop-router is the real one under callgrind
    daemons=$WORK/daemons
    mkdir -p "$daemons"
    for p in "$BIN"/onehop-*; do ln -s "$p" "$daemons/"; done
    rm "$daemons/onehop-router"
    cat > "$daemons/onehop-router" <<W
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$WORK/callgrind.out.%p "$BIN/onehop-router" "\$@"
W
    chmod 755 "$daemons/onehop-router"
fi

smtp-sink -c -u nobody "127.0.0.1:$SINK" 1000 > "$WORK/sink.out" 2>&1 &
sink_pid=$!
cat > "$oh/onehop.conf" <<CONF
myhostname = bench.onehop.test
local_domains = bench.onehop.test
smtp_listen = 127.0.0.1:$OH_PORT
queue_dir = queue
run_dir = run
log = maillog
daemon_dir = $daemons
dns_servers = 127.0.0.1:9
relayhost = [127.0.0.1]:$SINK
local_users = any
smtpd_client_connection_limit = 10000
CONF
: > "$oh/routes"; : > "$oh/sites"; : > "$oh/aliases"
chown -R nobody:nogroup "$WORK"
trace_pid=
cleanup() {
    [ -n "$trace_pid" ] && kill -INT "$trace_pid" 2>/dev/null || true
    as_nobody "$BIN/onehop" -C "$oh" stop >/dev/null 2>&1 || true
    kill "$sink_pid" 2>/dev/null || true
}
trap cleanup EXIT
as_nobody "$BIN/onehop" -C "$oh" start >/dev/null
master=$(cat "$oh/run/master.pid")

# name of each process of the tree: the program, onehop-queue told apart by its mode
procs() {
    for p in $(pgrep -P "$master") $master; do
        cmd=$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null) || continue
        name=$(echo "$cmd" | awk '{ n = $1; sub(".*/", "", n);
            if (n == "valgrind") { for (i = 2; i <= NF; i++) if ($i !~ /^-/) { n = $i; sub(".*/", "", n); break } }
            if (n == "onehop-queue") { if ($0 ~ /--clean/) n = n "(cleaner)"; else if ($0 ~ /--server/) n = n "(server)" }
            print n }')
        echo "$p $name"
    done
}
router=$(procs | awk '$2 == "onehop-router" { print $1 }')
ticks() { # PID: "utime stime" in ticks
    sed 's/.*) //' /proc/$1/stat | awk '{ print $12, $13 }'
}
procs > "$WORK/procs"
while read -r p name; do echo "$p $name $(ticks "$p")"; done < "$WORK/procs" > "$WORK/cpu0"

case "$TRACE" in
strace) strace ${STRACE_OPTS:--c} -f -o "$WORK/strace.out" -p "$router" & trace_pid=$! ;;
perf) perf record -g -o "$WORK/perf.data" -p "$router" 2> "$WORK/perf.err" & trace_pid=$! ;;
esac
sleep 0.5

sink_count() {
    c=$(tr '\r' '\n' < "$WORK/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
    echo "${c:-0}"
}
t0=$(date +%s.%N)
smtp-source -c -l 4096 -m "$M" -r "$R" -s "$S" -f bench@a.test -t rcpt@b.test \
    "127.0.0.1:$OH_PORT" > "$WORK/source.out" 2>&1
done=0
for _ in $(seq 12000); do
    if [ "$(sink_count)" -ge "$M" ]; then
        n=$(find "$oh/queue/incoming" "$oh/queue/active" -type f 2>/dev/null | wc -l)
        [ "$n" -eq 0 ] && { done=1; break; }
    fi
    sleep 0.05
done
t1=$(date +%s.%N)
[ "$done" -eq 1 ] || echo "relay_cpu: not done: sink $(sink_count) of $M" >&2
while read -r p name; do echo "$p $name $(ticks "$p")"; done < "$WORK/procs" > "$WORK/cpu1"
if [ -n "$trace_pid" ]; then
    kill -INT "$trace_pid"; wait "$trace_pid" 2>/dev/null || true; trace_pid=
fi
hz=$(getconf CLK_TCK)
echo "$M messages, $R recipient(s), $S sessions: $(echo "$t0 $t1" | awk '{ printf "%.2f s", $2 - $1 }'), load $(cut -d' ' -f1 /proc/loadavg)"
echo "| process | user ms/msg | system ms/msg | total ms/msg |"
echo "|---|---|---|---|"
paste -d" " "$WORK/cpu0" "$WORK/cpu1" | awk -v hz="$hz" -v m="$M" '
    { u = ($7 - $3) * 1000 / hz / m; s = ($8 - $4) * 1000 / hz / m; tu += u; ts += s
      printf "| %s | %.3f | %.3f | %.3f |\n", $2, u, s, u + s }
    END { printf "| all | %.3f | %.3f | %.3f |\n", tu, ts, tu + ts }'
if [ "$TRACE" = strace ]; then
    echo
    echo "router syscalls per message (strace -c -f):"
    awk -v m="$M" '$1 ~ /^[0-9.]+$/ && NF >= 5 { n = $4; name = $NF; if (name != "total") printf "  %-16s %8.2f\n", name, n / m; else printf "  %-16s %8.2f\n", "TOTAL", n / m }' "$WORK/strace.out"
fi
