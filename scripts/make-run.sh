#!/bin/sh
# make-run.sh BIN — `make run`: a ready instance in run/ (SPEC 1): SMTP on
# 127.0.0.1:2525, local mail to Maildirs under run/mail/, queue in run/queue,
# log in run/maillog, started in the foreground. The configuration is written
# once and then left to the user's edits.
set -eu
bin=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/run"
mkdir -p "$run/mail"
if [ ! -f "$run/onehop.conf" ]; then
    cat > "$run/onehop.conf" <<CONF
# onehop instance started by \`make run\` (see onehop.conf(5)); edit freely.
myhostname = localhost.localdomain
local_domains = \$myhostname, localhost
smtp_listen = 127.0.0.1:2525
queue_dir = queue
run_dir = state
log = maillog
mailbox = $run/mail/%u/Maildir/
local_users = any
CONF
    : > "$run/routes"; : > "$run/sites"
    printf 'postmaster: %s\n' "$(id -un)" > "$run/aliases"
fi
"$bin/onehop" -C "$run" check
missing=""
for d in onehop-master onehop-queue onehop-router onehop-dnscache onehop-remote onehop-smtpd onehop-local; do
    [ -x "$bin/$d" ] || missing="$missing $d"
done
if [ -n "$missing" ]; then
    echo "make run: the configuration in $run is valid, but this build lacks the daemons" >&2
    echo "make run: that \`onehop start\` supervises:$missing" >&2
    echo "make run: until they are built, inject with: $bin/sendmail -C $run -f you@localhost rcpt@localhost" >&2
    exit 1
fi
exec "$bin/onehop" -C "$run" start --foreground
