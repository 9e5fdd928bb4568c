#!/bin/sh
# bench/dns/run.sh — onehop-dnscache against unbound, on cached lookups
# (issue 4 benchmark; results in bench/RESULTS.md, section "DNS cache").
#
#   bench/dns/run.sh            from the top of the source tree
#   NAMES=100000 RUN_SECONDS=5 THREADS=1 bench/dns/run.sh
#
# What it does, all on 127.0.0.1 and under a fresh /tmp directory:
#   1. builds onehop-dnscache, onehop and bench/dns/dnsbench.c into
#      build/bench-dns (its own build directory);
#   2. starts the dnslib test server (tests/integration/fixtures/dnsserver.py)
#      with NAMES A records (TTL 1 day);
#   3. starts a private unbound (Debian's package: `scripts/deps.sh bench`),
#      its own configuration, a free port, no root anchor, no remote fetch,
#      forwarding everything to the test server, THREADS threads (default 1,
#      like onehop-dnscache's one loop), caches large enough for every name;
#   4. starts onehop-dnscache with unbound as its upstream, records its RSS,
#      asks every name once through it (which fills both caches), records
#      the RSS again: memory per cached name;
#   5. cached lookups of A records, walking every name, for RUN_SECONDS with
#      1, 16 and 256 concurrent clients: through onehop-dnscache's Unix
#      socket, one connection per client, then the same names from
#      unbound's cache through c-ares, then (16 and 256) onehop-dnscache with
#      the requests multiplexed on one connection, as remote and router use it;
#      ROUNDS rounds (default 3), the two servers interleaved, and the round
#      with the median rate reported (the machine may be shared: the spread
#      of every rate is reported too);
#   6. stops the three processes by pid and checks from the test server's
#      count that the measured runs were answered from the caches;
#   7. prints the Markdown section (bench/all.sh puts it into
#      bench/RESULTS.md between its markers; this script writes no file).
# It must never touch a system resolver or a process it did not start.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
NAMES=${NAMES:-100000}
RUN_SECONDS=${RUN_SECONDS:-5}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-"1 16 256"}
BUILD=build/bench-dns
BIN=$BUILD/bin
PY=/usr/bin/python3

command -v unbound >/dev/null || { echo "run.sh: unbound is missing: scripts/deps.sh bench" >&2; exit 1; }
make -s BUILD=$BUILD BIN=$BIN "$BIN/onehop-dnscache" "$BIN/onehop" "$BUILD/bench/dnsbench" >/dev/null

work=$(mktemp -d --tmpdir --suffix=.onehop-bench-dns)   # mktemp picks the unique part
fixture_pid= unbound_pid= cache_pid=
stop_pid() { # pid: TERM, wait at most 10 s, then KILL
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$1" 2>/dev/null || true
}
cleanup() {
    stop_pid "$cache_pid"; stop_pid "$unbound_pid"; stop_pid "$fixture_pid"
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# shellcheck source=bench/lib/common.sh
. "$top/bench/lib/common.sh"   # free_port
wait_for() { # file pattern: wait at most 60 s for pattern in file
    i=0
    until grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 600 ] || { echo "run.sh: timeout waiting for $2 in $1" >&2; exit 1; }
        sleep 0.1
    done
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# measure TARGET SERVER_PID ADDRESS CLIENTS: one run, with the server's CPU share
measure() {
    t0=$(cpu_ticks "$2")
    line=$("$BUILD/bench/dnsbench" "$1" "$3" "$work/names" "$4" "$RUN_SECONDS") || true
    t1=$(cpu_ticks "$2")
    echo "$line server_cpu=$(( (t1 - t0) * 100 / $(getconf CLK_TCK) / RUN_SECONDS ))%" >>"$work/runs"
}

# -- 1-2: names and the authoritative test server
$PY - "$work" "$NAMES" <<'PY'
import sys
work, n = sys.argv[1], int(sys.argv[2])
with open(work + "/names", "w") as names, open(work + "/zone", "w") as zone:
    for i in range(n):
        name = "h%06d.bench.test" % i
        names.write(name + "\n")
        zone.write("%s. 86400 IN A 10.%d.%d.%d\n" % (name, (i >> 16) & 255, (i >> 8) & 255, i & 255))
PY
fport=$(free_port)
$PY tests/integration/fixtures/dnsserver.py --port "$fport" --zone "$work/zone" \
    >"$work/fixture.out" 2>"$work/fixture.err" &
fixture_pid=$!
wait_for "$work/fixture.out" "listening"

# -- 3: unbound, private
uport=$(free_port)
cat >"$work/unbound.conf" <<CONF
server:
    interface: 127.0.0.1
    port: $uport
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$work"
    pidfile: ""
    use-syslog: no
    logfile: "$work/unbound.log"
    verbosity: 0
    num-threads: $THREADS
    msg-cache-size: 256m
    rrset-cache-size: 512m
    module-config: "iterator"
    do-not-query-localhost: no
    qname-minimisation: no
    access-control: 127.0.0.0/8 allow
    local-zone: "test." nodefault   # RFC 6761 names are blocked by default
    num-queries-per-thread: 4096
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$fport
remote-control:
    control-enable: no
CONF
unbound -d -c "$work/unbound.conf" >"$work/unbound.out" 2>&1 &
unbound_pid=$!
echo h000000.bench.test >"$work/one"
i=0
until "$BUILD/bench/dnsbench" warm-dns "127.0.0.1:$uport" "$work/one" >"$work/probe.out" 2>&1; do
    i=$((i + 1)); [ $i -lt 50 ] || { echo "run.sh: unbound did not answer" >&2; cat "$work/probe.out" "$work/unbound.out" "$work/unbound.log" >&2; exit 1; }
    sleep 0.2
done

# -- 4: onehop-dnscache, memory per cached name
mkdir -p "$work/conf"
cat >"$work/conf/onehop.conf" <<CONF
run_dir = $work/run
queue_dir = $work/queue
log = $work/maillog
dns_servers = 127.0.0.1:$uport
dns_cache_size = $((NAMES * 2))
dns_timeout = 5s
CONF
"$BIN/onehop-dnscache" -C "$work/conf" >"$work/dnscache.out" 2>&1 &
cache_pid=$!
wait_for "$work/maillog" "started"
rss_before=$(rss_kb $cache_pid)
# A slow test server may make a few first lookups fail (unbound gives up on
# it): pass again until every name is in; the cached ones answer at once.
pass=0
until warm=$("$BUILD/bench/dnsbench" warm-cache "$work/run/dnscache.sock" "$work/names"); do
    pass=$((pass + 1))
    echo "run.sh: warm-up pass $pass: $warm" >&2
    [ $pass -lt 5 ] || { echo "run.sh: the caches do not fill" >&2; exit 1; }
    sleep 2
done
rss_after=$(rss_kb $cache_pid)
"$BIN/onehop" -C "$work/conf" dns --dump --json >"$work/dump.json"
"$BUILD/bench/dnsbench" warm-dns "127.0.0.1:$uport" "$work/names" >"$work/warm-dns" ||
    { echo "run.sh: unbound does not answer every name: $(cat "$work/warm-dns")" >&2; exit 1; }

# -- 5: the measured runs
load=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/runs"
# (a run with errors still reports them: they go into the table)
round=0
while [ $round -lt "$ROUNDS" ]; do
    for c in $CLIENTS; do
        measure cache "$cache_pid" "$work/run/dnscache.sock" "$c"
        measure dns "$unbound_pid" "127.0.0.1:$uport" "$c"
        [ "$c" -gt 1 ] && measure cache-pipe "$cache_pid" "$work/run/dnscache.sock" "$c"
    done
    round=$((round + 1))
done
cat "$work/runs" >&2

# -- 6: stop, check, report
stop_pid "$cache_pid"; cache_pid=
stop_pid "$unbound_pid"; unbound_pid=
stop_pid "$fixture_pid"; fixture_pid=
upstream=$(sed -n 's/^dnsserver: \([0-9]*\) queries answered.*/\1/p' "$work/fixture.err")

$PY - "$work" "$NAMES" "$rss_before" "$rss_after" "$upstream" "$THREADS" \
    "$RUN_SECONDS" "$warm" "$ROUNDS" "$load" <<'PY'
import json, os, platform, sys, time
work, names, rss0, rss1, upstream, threads, secs, warm, rounds, load = sys.argv[1:11]
names, rss0, rss1 = int(names), int(rss0), int(rss1)
runs = [dict(kv.split("=") for kv in line.split()) for line in open(work + "/runs")]
dump = json.load(open(work + "/dump.json"))
c = dump["counters"]
entries = [e for e in dump["entries"] if e["type"] == "A"]
payload = sum(len(e["name"]) + 4 * len(e["addresses"]) for e in entries) / max(1, len(entries))
rss_per = (rss1 - rss0) * 1024 / names
bytes_per = c["cache_bytes"] / max(1, c["cache_entries"])
cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
groups = {}
for r in runs:
    groups.setdefault((r["target"], int(r["clients"])), []).append(r)
chosen = []
order = {"cache": 0, "cache-pipe": 1, "dns": 2}
for key in sorted(groups, key=lambda k: (order[k[0]], k[1])):
    rs = sorted(groups[key], key=lambda r: float(r["rate"]))
    median = dict(rs[len(rs) // 2])
    median["spread"] = "%s–%s" % (rs[0]["rate"], rs[-1]["rate"])
    chosen.append(median)
# paired rounds: each cache run is followed by the unbound run of the same clients
wins = {}
paired_runs = [r for r in runs if r["target"] != "cache-pipe"]
for a, b in zip(paired_runs[0::2], paired_runs[1::2]):
    w = wins.setdefault(int(a["clients"]), [0, 0])
    w[0] += float(a["rate"]) > float(b["rate"])
    w[1] += 1
runs_all, runs = runs, chosen
rows = []
for r in runs:
    who = {"cache": "onehop-dnscache, one connection per client",
           "cache-pipe": "onehop-dnscache, one connection, N in flight"}.get(r["target"]) or \
          "unbound %s, %s thread%s (c-ares, UDP)" % (os.popen("unbound -V").read().split()[1],
                                                    threads, "" if threads == "1" else "s")
    rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        who, r["clients"], r["rate"], r["spread"], r["p50_us"], r["p99_us"], r["errors"],
        r["server_cpu"], r["client_cpu"]))
best = {t: max(float(r["rate"]) for r in runs if r["target"] == t) for t in order}
paired = ", ".join("%d clients: %d of %d" % (c, w[0], w[1]) for c, w in sorted(wins.items()))
section = """Run %s on %s (%d cores, load average %s before the runs), %d names,
%s s per run, %s rounds, the two servers interleaved; the median round is
shown. Closed loop: each client sends its next lookup when its answer is in;
every answer is decoded and checked. `bench/dns/run.sh` reproduces it.
Both answer from their caches: the test server answered %s queries in all
(the %d names once, while warming both caches through onehop-dnscache).

| server | clients | lookups/s (median) | all rounds | p50 µs | p99 µs | errors | server CPU | client CPU |
|---|---|---|---|---|---|---|---|---|
%s

Best median: onehop-dnscache %.0f lookups/s with one connection per client,
%.0f with the requests multiplexed on one connection (as remote and router do,
through common/dnsclient.h); unbound %.0f lookups/s. Rounds in which
onehop-dnscache (one connection per client) was faster than the unbound run
right after it: %s.

Memory at %d cached names (A records): RSS grew by %d kB, **%.0f bytes per
cached name** (the cache's own count: %.0f bytes per entry, table included);
the payload (name and address) is %.0f bytes, so the overhead is %.0f bytes
per name (RSS) / %.0f bytes (cache count). Warm-up: %s.
""" % (time.strftime("%Y-%m-%d"), cpu, os.cpu_count(), load, names, secs, rounds, upstream, names,
       "\n".join(rows), best["cache"], best["cache-pipe"], best["dns"], paired, len(entries), rss1 - rss0, rss_per,
       bytes_per, payload, rss_per - payload, bytes_per - payload, warm)
print(section)
PY
