#!/bin/sh
# install-config.sh DESTDIR SYSCONFDIR LIBEXECDIR — the non-program part of
# `make install`: a configuration directory with a commented onehop.conf and
# empty routes/sites/aliases (never overwriting existing files), and, when run
# as root into the real system (DESTDIR empty), the privilege-separated
# accounts of SPEC section 7 (named from onehop.conf's `user`, default onehop)
# and the queue (onehop.conf's queue_dir) and run directories. Into a DESTDIR,
# or as an ordinary user, it creates no account and says so.
#
#   ONEHOP_INSTALL_QUEUE_ONLY=1   (tests) stop after the accounts and queue_dir:
#                                 no /run/onehop, no set-uid onehop-queue
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

# onehop.conf's value of KEY (the last setting wins), else DEFAULT
conf_value() {
    v=$(sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$etc/onehop.conf" | tail -n 1 |
        sed 's/[[:space:]]*#.*$//; s/[[:space:]]*$//')
    echo "${v:-$2}"
}
base=$(conf_value user onehop)
queue_dir=$(conf_value queue_dir /var/spool/onehop)
case $queue_dir in /*) ;; *) queue_dir="$sysconfdir/$queue_dir" ;; esac

if [ -n "$destdir" ] || [ "$(id -u)" -ne 0 ]; then
    echo "install-config.sh: $([ -n "$destdir" ] && echo "DESTDIR is set" || echo "not root"):" \
         "no account created, no queue directory made (INSTALL, \"Accounts and the queue\")" >&2
    exit 0
fi
# SPEC section 7: one system account per daemon, from the `user` base name;
# each with a group of its own (queue_dir's group is the router's).
roles="smtpd queue router dns remote"
for role in $roles; do
    acct="$base-$role"
    if ! getent passwd "$acct" >/dev/null; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "onehop $role" "$acct"
        echo "install-config.sh: created account $acct"
    fi
done
getent group "$base" >/dev/null || groupadd --system "$base"
for role in $roles; do
    usermod -a -G "$base" "$base-$role"
done
# The message tree (queue/queue_modes.h, docs/INTERNALS.md "Ownership and the
# cleaner"): the queue account owns it all; set-gid directories of the
# router's group, so the router reads every message file and changes none;
# state/ is the router's own. Nothing below gives remote or dns any access.
qacct="$base-queue"; racct="$base-router"
rgroup=$(id -gn "$racct")
install -d -o "$qacct" -g "$rgroup" -m 2755 "$queue_dir"
for d in incoming active corrupt; do
    install -d -o "$qacct" -g "$rgroup" -m 2750 "$queue_dir/$d"
done
for d in tmp slots lock; do
    install -d -o "$qacct" -g "$rgroup" -m 2700 "$queue_dir/$d"
done
install -d -o "$racct" -g "$rgroup" -m 0700 "$queue_dir/state"
[ "${ONEHOP_INSTALL_QUEUE_ONLY:-}" = 1 ] && exit 0
# the run directory as onehop start makes it (onehop-master(8)): the master's
# pid file, lock and control socket, and the DNS cache's socket
run_dir=$(conf_value run_dir /run/onehop)
case $run_dir in /*) ;; *) run_dir="$sysconfdir/$run_dir" ;; esac
install -d -o root -g "$base-dns" -m 1775 "$run_dir"
# onehop-queue, the only writer of new messages, runs set-uid to its account
# so that any local user's sendmail can queue mail (it trusts nothing of the
# caller: onehop-queue(8), SECURITY).
if [ -f "$libexecdir/onehop-queue" ]; then
    chown "$qacct:$base" "$libexecdir/onehop-queue"
    chmod 4755 "$libexecdir/onehop-queue"
fi
