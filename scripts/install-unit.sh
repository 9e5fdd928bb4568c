#!/bin/sh
# install-unit.sh install|uninstall DESTDIR UNITDIR SBINDIR SYSCONFDIR — the
# systemd unit of `make install` / `make uninstall` (INSTALL "systemd").
#
# install writes DESTDIR/UNITDIR/onehop.service from etc/onehop.service.in
# with the installed paths (the PIDFile in the installed onehop.conf's
# run_dir); uninstall removes it. Into the real system (DESTDIR empty) with
# systemd running, systemd is told (daemon-reload), and uninstall first
# stops and disables the service. Never enables or starts it: that is the
# administrator's `systemctl enable --now onehop` (INSTALL).
set -eu
action=$1; destdir=$2; unitdir=$3; sbindir=$4; sysconfdir=$5
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/install-lib.sh"
unit="$destdir$unitdir/onehop.service"
say() { printf 'install-unit.sh: %s\n' "$*" >&2; }
systemd_runs() { [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

case $action in
install)
    conf="$destdir$sysconfdir/onehop.conf"
    run_dir=$(conf_value "$conf" run_dir /run/onehop)
    case $run_dir in /*) ;; *) run_dir="$sysconfdir/$run_dir" ;; esac
    mkdir -p "$destdir$unitdir"
    sed -e "s|@SBINDIR@|$sbindir|g" -e "s|@SYSCONFDIR@|$sysconfdir|g" -e "s|@RUN_DIR@|$run_dir|g" \
        "$top/etc/onehop.service.in" > "$unit.tmp"
    chmod 644 "$unit.tmp"
    mv "$unit.tmp" "$unit"
    say "wrote $unit"
    if systemd_runs; then systemctl daemon-reload; fi ;;
uninstall)
    if systemd_runs && [ -f "$unit" ]; then
        systemctl disable --now onehop.service || true
    fi
    rm -f "$unit"
    if systemd_runs; then systemctl daemon-reload; fi ;;
*)
    echo "usage: install-unit.sh install|uninstall DESTDIR UNITDIR SBINDIR SYSCONFDIR" >&2
    exit 2 ;;
esac
