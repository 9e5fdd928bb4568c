#!/bin/sh
# deps.sh — make sure the Debian packages onehop needs are installed.
#
#   scripts/deps.sh build   compiler, libuv, c-ares, OpenSSL, musl (static injection programs)
#   scripts/deps.sh run     the same (what `make run` needs)
#   scripts/deps.sh test    + cmocka, clang (fuzzing, sanitizers), pytest, dnslib,
#                           aiosmtpd, swaks, dig, strace, graphviz (`dot`: onehop route
#                           --graph) (what `make check` needs)
#   scripts/deps.sh bench   + python3-dnslib and unbound (bench/dns/run.sh)
#
# Missing packages are installed with apt-get when running as root; otherwise
# the exact apt-get line is printed and the script fails.
set -eu

mode=${1:-build}
pkgs="gcc make pkg-config libuv1-dev libc-ares-dev libssl-dev musl-tools"
case $mode in
    build|run) ;;
    test) pkgs="$pkgs libcmocka-dev clang libclang-rt-dev python3 python3-pytest python3-dnslib \
python3-aiosmtpd swaks bind9-dnsutils strace procps graphviz pflogsumm" ;;
    bench) pkgs="$pkgs python3 python3-dnslib unbound" ;;
    *) echo "usage: deps.sh build|run|test|bench" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case $status in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing Debian packages; as root run:" >&2
    echo "    apt-get install -y$missing" >&2
    exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing >/dev/null
