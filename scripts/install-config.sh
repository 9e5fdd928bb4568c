#!/bin/sh
# install-config.sh DESTDIR SYSCONFDIR LIBEXECDIR — the non-program part of
# `make install` (INSTALL):
#
#   - the configuration directory: a commented onehop.conf whose daemon_dir
#     is LIBEXECDIR, and routes, sites and aliases (postmaster: root); files
#     that exist are never overwritten (daemon_dir is added to an
#     onehop.conf that lacks it, so that the daemons are found in libexec);
#   - when run as root into the real system (DESTDIR empty), what SPEC 7
#     needs: the privilege-separated accounts (named from onehop.conf's
#     `user`, default onehop), the queue directory (onehop.conf's
#     queue_dir) and the run directory (run_dir), with the owners and modes
#     the programs themselves give them, and onehop-queue set-uid to the
#     queue account. Into a DESTDIR, or as an ordinary user, it creates no
#     account and no directory outside DESTDIR, and says so.
#
# The modes are not written here a second time: they are read from the
# sources that the programs are built from (queue/queue_modes.h,
# daemons/master/account.c), and the message tree below queue_dir is made
# by onehop-queue itself, run as the queue account (`onehop-queue
# --recover` opens the queue as the writer does).
#
#   ONEHOP_INSTALL_QUEUE_ONLY=1   (tests) stop after the accounts and queue_dir:
#                                 no run_dir, no set-uid onehop-queue
#
# Must never: overwrite a configuration file, create an account outside a
# root install into the real system, or give an account uid 0.
set -eu
destdir=$1; sysconfdir=$2; libexecdir=$3
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/install-lib.sh"
etc="$destdir$sysconfdir"
say() { printf 'install-config.sh: %s\n' "$*" >&2; }
mkdir -p "$etc"
if [ ! -f "$etc/onehop.conf" ]; then
    cat > "$etc/onehop.conf" <<CONF
# onehop.conf — see onehop.conf(5) for every key and its default; check a
# change with \`onehop check\`, apply it with \`onehop reload\`.
#
# myhostname = mail.example.com        # default: the system host name
# local_domains = \$myhostname, localhost
# mynetworks = 127.0.0.0/8, ::1/128
# smtp_listen = 0.0.0.0:25, [::]:25
# relayhost = [smarthost.example.net]:587
# queue_dir = /var/spool/onehop
# run_dir = /run/onehop
# log = syslog
# mailbox = ~/Maildir/                 # ends in / = Maildir, else an mbox file
# user = onehop                        # base name of the daemon accounts
daemon_dir = $libexecdir
CONF
    say "wrote $etc/onehop.conf"
fi
grep -q '^[[:space:]]*daemon_dir[[:space:]]*=' "$etc/onehop.conf" ||
    echo "daemon_dir = $libexecdir" >> "$etc/onehop.conf"
for f in routes sites aliases; do
    [ -f "$etc/$f" ] || : > "$etc/$f"
done
grep -q '^postmaster:' "$etc/aliases" || echo 'postmaster: root' >> "$etc/aliases"

# the octal value of `#define NAME 0...` in FILE of the source tree
source_mode() {
    v=$(sed -n "s/^#define $1[[:space:]]\{1,\}\(0[0-7]*\).*/\1/p" "$top/$2")
    [ -n "$v" ] || { say "no #define $1 in $2"; exit 1; }
    echo "$v"
}

if [ -n "$destdir" ] || [ "$(id -u)" -ne 0 ]; then
    say "$([ -n "$destdir" ] && echo "DESTDIR is set" || echo "not root"):" \
        "no account created, no queue directory made (INSTALL, \"Accounts and the queue\")"
    exit 0
fi
base=$(conf_value "$etc/onehop.conf" user onehop)
queue_dir=$(conf_path "$etc/onehop.conf" queue_dir /var/spool/onehop)
run_dir=$(conf_path "$etc/onehop.conf" run_dir /run/onehop)

# SPEC 7: one system account per daemon, from the `user` base name, each
# with a group of its own, all also in group BASE.
roles="smtpd queue router dns remote"
for role in $roles; do
    acct="$base-$role"
    if ! getent passwd "$acct" >/dev/null; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "onehop $role" "$acct"
        say "created account $acct"
    fi
    [ "$(id -u "$acct")" -ne 0 ] || { say "account $acct has uid 0: refusing"; exit 1; }
done
getent group "$base" >/dev/null || { groupadd --system "$base" && say "created group $base"; }
for role in $roles; do
    usermod -a -G "$base" "$base-$role"
done

# The queue as the master prepares it at every start (daemons/master/
# account.c): queue_dir the queue account's with the router's group,
# set-gid; state/ the router's alone. Then the message tree below it as
# the queue account makes it (queue_modes.h), by the program itself.
qacct="$base-queue"; racct="$base-router"; dacct="$base-dns"
rgroup=$(id -gn "$racct")
install -d -o "$qacct" -g "$rgroup" -m "$(source_mode QUEUE_ROOT_MODE queue/queue_modes.h)" \
    "$queue_dir"
# (made below a set-gid directory, state/ inherits the bit: a numeric mode of
# five digits makes GNU chmod clear it, as the master's fchmod does)
state_mode=$(source_mode STATE_DIR_MODE daemons/master/account.c)
install -d -o "$racct" -g "$rgroup" "$queue_dir/state"
chmod "0$state_mode" "$queue_dir/state"
# (the installed onehop-queue; the build tree's when there is none, as for
# tests/integration/test_queue_ownership.py). Beside a running onehop
# (an upgrade) it changes nothing: the tree is there already.
queue_prog=$libexecdir/onehop-queue
[ -x "$queue_prog" ] || queue_prog=$top/bin/onehop-queue
setpriv --reuid="$qacct" --regid="$(id -gn "$qacct")" --init-groups \
    "$queue_prog" -C "$sysconfdir" --recover >/dev/null || true
[ -d "$queue_dir/incoming" ] || { say "onehop-queue --recover made no $queue_dir/incoming"; exit 1; }
say "queue $queue_dir ready ($qacct, group $rgroup)"
[ "${ONEHOP_INSTALL_QUEUE_ONLY:-}" = 1 ] && exit 0

# The run directory as the master makes it (onehop-master(8)): the pid
# file, lock and control socket (root's; the sticky bit keeps them from the
# group) and the DNS cache's socket. On a tmpfs /run the master makes it
# again at each start.
install -d -o root -g "$(id -gn "$dacct")" -m "$(source_mode RUN_DIR_MODE daemons/master/account.c)" \
    "$run_dir"
# onehop-queue, the only writer of new messages, runs set-uid to its account
# so that any local user's sendmail can queue mail (it trusts nothing of the
# caller and keeps the privilege only for the compiled-in configuration
# directory: onehop-queue(8)).
chown "$qacct:$base" "$libexecdir/onehop-queue"
chmod 4755 "$libexecdir/onehop-queue"
say "accounts $base-{$(echo "$roles" | tr ' ' ,)} and $run_dir ready; $libexecdir/onehop-queue set-uid $qacct"
