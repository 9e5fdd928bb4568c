#!/bin/sh
# make-run.sh BIN [RUN_DIR [SMTP_LISTEN]] — `make run` (SPEC 1): a ready
# instance in RUN_DIR (default run/ at the top of the tree) started in the
# foreground with the programs of BIN.
#
# The first run writes RUN_DIR/onehop.conf (SMTP on SMTP_LISTEN, default
# 127.0.0.1:2525; local_users = any; Maildirs under RUN_DIR/mail/; queue,
# run_dir and log inside RUN_DIR) and empty routes and sites, and aliases
# naming the user as postmaster; later runs leave those files to the user's
# edits, and the queue and the mail in RUN_DIR are kept from run to run.
# Daemons that this build lacks (onehop-smtpd, onehop-local) are named and
# the rest runs: `onehop start` starts what exists.
#
# Once the master logs that every daemon is ready, it prints how to send a
# first message (a sendmail line, and a swaks line when there is an SMTP
# server) and where it lands. Ctrl-C (SIGINT, which the terminal sends to
# the master as to make) or SIGTERM stops the instance gracefully (`onehop
# stop`'s path: in-flight work finished or returned to the queue); the
# script then says so and exits with the master's status.
#
# Must never: overwrite a configuration file that exists, remove anything in
# RUN_DIR, or exit while the master it started still runs.
set -eu
bin=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/install-lib.sh"
run=${2:-$top/run}
listen=${3:-127.0.0.1:2525}
mkdir -p "$run"
run=$(cd "$run" && pwd)
exec 3>&2 # what this script says goes to fd 3: the shell's own job notices are kept quiet
say() { printf 'make run: %s\n' "$*" >&3; }

# Who the instance runs as: the user running make; never root. Started by
# root, onehop-master insists on the SPEC 7 accounts of an installed system
# (INSTALL), so as root the instance runs as an ordinary user instead (SPEC
# 7: then everything runs as that user): $SUDO_USER, else the owner of the
# source tree, else nobody. $as is the prefix that runs a command as them.
as=""
me=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
    me=${SUDO_USER:-root}
    [ "$me" != root ] || me=$(stat -c %U "$top")
    { [ "$me" != root ] && [ "$me" != UNKNOWN ]; } || me=nobody
    group=$(id -gn "$me")
    as="setpriv --reuid=$me --regid=$group --init-groups"
    chown "$me:$group" "$run"
    $as test -x "$bin/onehop" -a -w "$run" || {
        say "as root, make run runs onehop as the ordinary user $me, who cannot run"
        say "$bin/onehop or write $run: run make run as an ordinary user in a clone of theirs"
        exit 1
    }
    say "started by root: the instance runs as $me (onehop-master(8), SPEC 7)"
fi

write_config() {
    [ -f "$run/onehop.conf" ] || cat > "$run/onehop.conf" <<CONF
# The instance of \`make run\` (README; every key: onehop.conf(5)). Written
# once: edit freely, \`make run\` keeps your changes, the queue and the mail.
myhostname = localhost.localdomain
local_domains = \$myhostname, localhost
smtp_listen = $listen
queue_dir = queue
run_dir = run
log = maillog
local_users = any
mailbox = $run/mail/%u/
CONF
    for f in routes sites; do
        [ -f "$run/$f" ] || : > "$run/$f"
    done
    [ -f "$run/aliases" ] || printf 'postmaster: %s\n' "$me" > "$run/aliases"
    [ -z "$as" ] || chown "$me:$group" "$run/onehop.conf" "$run/routes" "$run/sites" "$run/aliases"
}

write_config
"$bin/onehop" -C "$run" check >/dev/null || {
    "$bin/onehop" -C "$run" check || true
    say "$run/onehop.conf has the errors above; fix them (or remove the file for a fresh one)"
    exit 1
}
for d in onehop-master onehop-queue onehop-dnscache; do
    [ -x "$bin/$d" ] || { say "$bin/$d is missing: the build failed"; exit 1; }
done
missing=""
for d in onehop-router onehop-remote onehop-local onehop-smtpd; do
    [ -x "$bin/$d" ] || missing="$missing $d"
done
smtp=$(conf_value "$run/onehop.conf" smtp_listen "")
[ -x "$bin/onehop-smtpd" ] || smtp=""
log=$(conf_value "$run/onehop.conf" log syslog)
case $log in /* | syslog | stderr) ;; *) log="$run/$log" ;; esac

# The master, in the foreground of the terminal. With a terminal, job
# control (set -m) puts this script in a process group of its own, which
# takes the terminal, and the master in another one: ^C then reaches this
# script alone (and not make), which tells the master; the master stops
# gracefully and exits 0, and so do this script and make (GNU make would
# otherwise re-raise the SIGINT it got and die of it after its recipe). With
# no terminal everything stays in make's process group (a SIGINT to that
# group reaches the master directly: make itself then dies of SIGINT, as
# always). A background command of a non-interactive shell starts with
# SIGINT ignored; the master sets its own handlers for SIGINT and SIGTERM
# (onehop-master(8)), so that does not matter to it.
jobctl=""
if [ -t 0 ] && { : </dev/tty; } 2>/dev/null; then
    set -m
    jobctl=1
fi
log_from=0
[ ! -f "$log" ] || log_from=$(wc -c < "$log")
# shellcheck disable=SC2086
$as env HOME="$(getent passwd "$me" | cut -d: -f6)" USER="$me" LOGNAME="$me" \
    "$bin/onehop" -C "$run" start --foreground &
master=$!
exec 2>/dev/null # under job control the shell reports the job's end ("[1] + Done")
stopping=""
# A signal to this script: the master is told (SIGINT only when it is in a
# process group of its own, else it has had the signal itself).
# shellcheck disable=SC2317 # (called by the traps)
on_signal() {
    stopping=1
    [ "$1" = INT ] && [ -z "$jobctl" ] || kill -s "$1" "$master" 2>/dev/null || true
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

# Ready: the master's "ready:" line in the log of this start (bounded: the
# master gives up by itself after its own ready bound of 30 s). (The shell
# may reap a master that failed here: its status is not known later.)
ready=""
while kill -0 "$master" 2>/dev/null && [ -z "$stopping" ]; do
    if [ -f "$log" ] && tail -c +$((log_from + 1)) "$log" |
        grep -q "onehop/master\[$master\]: ready:"; then
        ready=1
        break
    fi
    sleep 0.1
done

banner() {
    # shellcheck disable=SC2088 # onehop.conf's own ~, not the shell's
    mailbox=$(conf_value "$run/onehop.conf" mailbox "~/Maildir/")
    lands=$(printf '%s' "$mailbox" | sed "s|%u|$me|g; s|%d|localhost|g")
    say "onehop runs in $run (configuration onehop.conf there, log $log)"
    [ -z "$missing" ] || say "this build has no$missing yet; the rest runs"
    say "send a first message:"
    printf '    printf "Subject: hello\\n\\nmy first message\\n" | %s%s -C %s %s@localhost\n' \
        "${as:+$as }" "$bin/sendmail" "$run" "$me" >&3
    [ -z "$smtp" ] || printf '    swaks --server %s --from %s@localhost --to %s@localhost\n' \
        "$smtp" "$me" "$me" >&3
    case $missing in
        *onehop-local*)
            say "local delivery (onehop-local) is not built yet: the message waits in the queue"
            say "(see $bin/onehop -C $run queue) and lands in $lands once it is built" ;;
        *) say "it lands in ${lands}new/ (a Maildir: one file per message)" ;;
    esac
    say "watch it: tail -f $log; Ctrl-C stops onehop (nothing is lost: the queue and the"
    say "mail in $run are kept for the next make run)"
}
[ -z "$ready" ] || banner

# Wait for the master, again after each signal that interrupted the wait.
# 127: the shell had reaped it already (it failed to start, see above).
status=""
while [ -z "$status" ]; do
    wait "$master" && rc=0 || rc=$?
    kill -0 "$master" 2>/dev/null || status=$rc
done
[ "$status" -ne 127 ] || [ -n "$ready" ] || status=1
if [ "$status" -eq 0 ]; then
    say "onehop stopped (exit 0); the queue and the mail in $run are kept"
else
    say "onehop exited with status $status (see $log)"
fi
exit "$status"
