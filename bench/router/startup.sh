#!/bin/sh
# bench/router/startup.sh — onehop-router's start-up with a large queue:
# the time from `onehop start` until the first delivery reaches the sink,
# and the router's resident memory.
#
#   bench/router/startup.sh [BIN]   BIN: directory of onehop's programs (default <repo>/bin)
#
# Environment: COUNTS (default "100000 1000000"), SIZE (message body bytes,
# default 512), WRITERS (default 20), WORK (default /tmp/onehop-startup).
#
# For each count: a fresh instance (run as nobody, as tests do; relayhost =
# [127.0.0.1]:SINK, an smtp-sink counting messages) is filled while its
# daemons are stopped, through `onehop-queue --server` with WRITERS
# concurrent transactions (bench/server_driver.py; group files, as smtpd
# writes them), every message one recipient. Then the clock starts, `onehop
# start` runs (it returns once every daemon said READY: the cleaner's
# RECOVER done, the state side replayed and the new files learnt), and the
# clock stops at the sink's first message. The router's VmRSS and VmHWM
# (peak) are read from /proc at that moment and 5 s later. The instance is
# stopped without waiting for the rest to be delivered.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${1:-$top/bin}" && pwd)
COUNTS=${COUNTS:-"100000 1000000"}
SIZE=${SIZE:-512}
WRITERS=${WRITERS:-20}
WORK=${WORK:-/tmp/onehop-startup}
PY=/usr/bin/python3

[ "$(id -u)" -eq 0 ] || { echo "startup: run as root (it runs the instance as nobody)" >&2; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK"
chmod 755 "$WORK"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
now() { date +%s.%N; }
SINK=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SMTPD=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
smtp-sink -c -u nobody "127.0.0.1:$SINK" 1000 > "$WORK/sink.out" 2>&1 &
sink_pid=$!
oh=$WORK/onehop
trap 'as_nobody "$BIN/onehop" -C "$oh" stop >/dev/null 2>&1 || true; kill $sink_pid 2>/dev/null || true' EXIT
sink_count() {
    c=$(tr '\r' '\n' < "$WORK/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
    echo "${c:-0}"
}
router_pid() {
    as_nobody "$BIN/onehop" -C "$oh" status --json |
        "$PY" -c 'import json,sys; print([p["pid"] for p in json.load(sys.stdin)["processes"] if p["name"] == "router"][0])'
}
mem() { awk '/^VmRSS|^VmHWM/ { printf "%s %d MB  ", $1, $2 / 1024 }' "/proc/$1/status"; }

echo "| queued messages | fill (messages/s) | onehop start -> first delivery | router RSS at the first delivery | RSS / peak 5 s later |"
echo "|---|---|---|---|---|"
for n in $COUNTS; do
    rm -rf "$oh"
    mkdir -p "$oh"
    cat > "$oh/onehop.conf" <<CONF
myhostname = bench.onehop.test
local_domains = bench.onehop.test
smtp_listen = 127.0.0.1:$SMTPD
queue_dir = queue
run_dir = run
log = maillog
dns_servers = 127.0.0.1:9
relayhost = [127.0.0.1]:$SINK
local_users = any
CONF
    : > "$oh/routes"; : > "$oh/sites"; : > "$oh/aliases"
    chown -R nobody:nogroup "$oh"
    echo "filling $n messages" >&2
    fill=$(as_nobody "$PY" "$top/bench/server_driver.py" "$BIN/onehop-queue" "$oh" "$n" "$WRITERS" "$SIZE")
    echo "$fill" >&2
    fill_rate=$(echo "$fill" | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
    sync
    base=$(sink_count)
    t0=$(now)
    as_nobody "$BIN/onehop" -C "$oh" start >/dev/null
    t_ready=$(now)
    waited=0
    while [ "$(sink_count)" -le "$base" ]; do
        sleep 0.01
        waited=$((waited + 1))
        [ $waited -lt 30000 ] || { echo "startup: no delivery within 300 s" >&2; exit 1; }
    done
    t1=$(now)
    pid=$(router_pid)
    at_first=$(mem "$pid")
    sleep 5
    later=$(mem "$pid")
    started=$(grep -m1 'onehop/router.*started:' "$oh/maillog" | sed 's/.*started: //')
    echo "$n: start returned after $(echo "$t0 $t_ready" | awk '{ printf "%.2f", $2 - $1 }') s; router: $started" >&2
    echo "| $n | $fill_rate | $(echo "$t0 $t1" | awk '{ printf "%.2f s", $2 - $1 }') | $at_first | $later |"
    as_nobody "$BIN/onehop" -C "$oh" stop >/dev/null
done
echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
