#!/bin/sh
# install-config.sh DESTDIR SYSCONFDIR LIBEXECDIR — the non-program part of
# `make install`: a configuration directory with a commented onehop.conf and
# empty routes/sites/aliases (never overwriting existing files), and, when run
# as root into the real system (DESTDIR empty), the privilege-separated
# accounts of SPEC section 7 and the queue and run directories.
set -eu
destdir=$1; sysconfdir=$2; libexecdir=$3
etc="$destdir$sysconfdir"
mkdir -p "$etc"
if [ ! -f "$etc/onehop.conf" ]; then
    cat > "$etc/onehop.conf" <<CONF
# onehop.conf — see onehop.conf(5) for every key and its default.
# myhostname = mail.example.com
# local_domains = \$myhostname, localhost
daemon_dir = $libexecdir
CONF
fi
# an existing onehop.conf without daemon_dir would look for the daemons
# beside the commands (the build tree's default): point it at libexec
grep -q '^daemon_dir[[:space:]]*=' "$etc/onehop.conf" || echo "daemon_dir = $libexecdir" >> "$etc/onehop.conf"
for f in routes sites aliases; do
    [ -f "$etc/$f" ] || : > "$etc/$f"
done
grep -q '^postmaster:' "$etc/aliases" || echo 'postmaster: root' >> "$etc/aliases"

[ -z "$destdir" ] && [ "$(id -u)" -eq 0 ] || exit 0
for acct in onehop-smtpd onehop-queue onehop-router onehop-dns onehop-remote; do
    if ! getent passwd "$acct" >/dev/null; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$acct"
    fi
done
getent group onehop >/dev/null || groupadd --system onehop
for acct in onehop-smtpd onehop-queue onehop-router onehop-dns onehop-remote; do
    usermod -a -G onehop "$acct"
done
install -d -o onehop-queue -g onehop -m 0750 /var/spool/onehop
install -d -o root -g onehop -m 0750 /run/onehop
# onehop-queue, the only writer of new messages, runs set-uid to its account
# so that any local user's sendmail can queue mail (it trusts nothing of the
# caller: onehop-queue(8), SECURITY).
if [ -f "$libexecdir/onehop-queue" ]; then
    chown onehop-queue:onehop "$libexecdir/onehop-queue"
    chmod 4755 "$libexecdir/onehop-queue"
fi
