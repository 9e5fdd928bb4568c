#!/bin/sh
# soak.sh BIN — onehop's soak (tests/soak/soak.py; issue 14 item 2) against
# the programs in BIN, as root, in a private mount namespace whose /etc is
# an overlay (the host's /etc is not touched) with /etc/onehop bound to the
# run's configuration directory: the instance is then installed-like, so
# its set-uid onehop-queue keeps the queue account's rights (queue/
# onehop-queue.c keeps them only for the compiled-in directory).
#
# Environment (all optional):
#   SOAK_SECONDS    length of the load and chaos phase (default 1200)
#   SOAK_MESSAGES   messages to inject over it (default 20000)
#   SOAK_SEED       the RNG seed of faults, recipients and chaos (default onehop-soak)
#   SOAK_PORT_BASE  first of the 10 ports used (default 34000; the soak's range is 34000-34999)
#   SOAK_WORK       the run's directory (default /tmp/soak-<date>-<pid>); kept
#   SOAK_LABEL      a name for the result table
#   SOAK_DRAIN_SECONDS  the bound on the final drain (default 900)
# The result table is printed and written to SOAK_WORK/result.md; exit 1 if
# a message was lost, a sanitizer reported, a daemon is in a crash loop or
# the queue did not drain.
set -eu
[ $# -eq 1 ] || { echo "usage: soak.sh BIN" >&2; exit 2; }
bin=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
    echo "soak.sh: must run as root (the SPEC 7 accounts, a mount namespace)" >&2
    exit 2
fi
for tool in unshare mount useradd; do
    command -v "$tool" >/dev/null || { echo "soak.sh: needs $tool" >&2; exit 2; }
done
work=${SOAK_WORK:-/tmp/soak-$(date +%Y%m%d-%H%M%S)-$$}
mkdir -p "$work/etc" "$work/ns-up" "$work/ns-work"
work=$(cd "$work" && pwd)
echo "soak.sh: $bin, work $work"
# shellcheck disable=SC2016
exec unshare -m --propagation private sh -c '
    mount -t overlay overlay -o lowerdir=/etc,upperdir="$1/ns-up",workdir="$1/ns-work" /etc &&
    mkdir -p /etc/onehop && mount --bind "$1/etc" /etc/onehop && shift && exec "$@"' \
    sh "$work" /usr/bin/python3 "$top/tests/soak/soak.py" --bin "$bin" --work "$work" \
    --seconds "${SOAK_SECONDS:-1200}" --messages "${SOAK_MESSAGES:-20000}" \
    --seed "${SOAK_SEED:-onehop-soak}" --port-base "${SOAK_PORT_BASE:-34000}" \
    --label "${SOAK_LABEL:-}" --drain-seconds "${SOAK_DRAIN_SECONDS:-900}"
