# bench/lib/common.sh — helpers every benchmark script shares (sourced; sh).
# Needs $top (the source tree) and $PY (/usr/bin/python3) set by the caller.
#
#   fresh_dir DIR           DIR emptied (made if missing), mode 755
#   now                     seconds since the epoch, nanoseconds
#   free_port               a free TCP port on 127.0.0.1 in BENCH_PORTS (default
#                           35000-35999, the bench's own range on the shared
#                           machine)
#   median                  the median of the numbers on stdin (one a line or
#                           blank-separated), the lower middle for an even count
#   treecpu PID             user + system CPU seconds of PID's process tree
#   as_nobody CMD...        CMD as nobody:nogroup (SPEC 7: onehop runs as one
#                           ordinary user)
#   oh_create DIR LISTEN RELAYHOST
#                           a fresh onehop configuration in DIR, owned by
#                           nobody: smtp_listen = LISTEN (empty: no SMTP server),
#                           relayhost = RELAYHOST, no DNS server (127.0.0.1:9);
#                           lines read from stdin are appended
#   oh_start DIR / oh_stop DIR / oh_master_pid DIR
#
# Must never: stop a process this run did not start.

fresh_dir() { rm -rf "$1"; mkdir -p "$1"; chmod 755 "$1"; }

now() { date +%s.%N; }

free_port() {
    "$PY" - "${BENCH_PORTS:-35000-35999}" <<'PYEOF'
import random, socket, sys
low, high = (int(x) for x in sys.argv[1].split("-"))
for port in random.sample(range(low, high + 1), high - low + 1):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    sys.exit(0)
sys.exit("free_port: no free port in %s" % sys.argv[1])
PYEOF
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

treecpu() { "$PY" "$top/bench/remote/treecpu.py" "$1"; }

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }

oh_create() {
    oh_dir=$1
    rm -rf "$oh_dir"
    mkdir -p "$oh_dir"
    {
        cat <<EOF
myhostname = bench.onehop.test
local_domains = bench.onehop.test
queue_dir = queue
run_dir = run
log = maillog
dns_servers = 127.0.0.1:9
relayhost = $3
smtp_listen = $2
EOF
        cat
    } > "$oh_dir/onehop.conf"
    : > "$oh_dir/routes"
    : > "$oh_dir/sites"
    : > "$oh_dir/aliases"
    chown -R nobody:nogroup "$oh_dir"
}

oh_start() { as_nobody "$BIN/onehop" -C "$1" start > /dev/null; }
oh_stop() { [ -f "$1/onehop.conf" ] && as_nobody "$BIN/onehop" -C "$1" stop > /dev/null 2>&1 || true; }
oh_master_pid() { cat "$1/run/master.pid"; }

# sink_count OUT: the last mesg= counter of an `smtp-sink -c` writing to OUT
sink_count() {
    c=$(tr '\r' '\n' < "$1" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
    echo "${c:-0}"
}

# wait_done OUT TARGET QUEUE_DIRS...: until the sink writing to OUT has
# counted TARGET messages and no file is left in the dirs (600 s at most)
wait_done() {
    out=$1 target=$2; shift 2
    for _ in $(seq 12000); do
        if [ "$(sink_count "$out")" -ge "$target" ]; then
            [ "$(find "$@" -type f 2>/dev/null | wc -l)" -eq 0 ] && return 0
        fi
        sleep 0.05
    done
    echo "bench: not done: the sink has $(sink_count "$out") of $target" >&2
    return 1
}

# oh_relay DIR LISTEN RELAYHOST: oh_create with local_users = any (and the
# lines on stdin), then started: an SMTP relay to RELAYHOST
oh_relay() {
    { echo "local_users = any"; cat; } | oh_create "$@"
    oh_start "$1"
}

# stop_all_on_exit: the EXIT trap (also taken on INT and TERM) stops the
# onehop of $oh, the Postfix of $pf (bench/lib/postfix.sh) and $sink_pid
stop_all_on_exit() {
    trap 'oh_stop "$oh"; pf_stop "$pf"; [ -z "${sink_pid:-}" ] || kill "$sink_pid" 2>/dev/null || true' EXIT
    trap 'exit 143' INT TERM
}
