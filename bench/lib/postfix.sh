# bench/lib/postfix.sh — the private Postfix instance every benchmark runs
# beside onehop (sourced by bench/*.sh and bench/*/run.sh; sh, needs root).
#
#   pf_require                 Debian's postfix is there (installed with debconf
#                              "No configuration" if missing); the system
#                              instance is never started
#   pf_create DIR LISTEN       a fresh instance under DIR: DIR/etc (main.cf,
#                              master.cf), DIR/spool (queue_directory),
#                              DIR/data (data_directory), DIR/maillog.
#                              master.cf is Debian's with smtpd on LISTEN
#                              (host:port) instead of port 25, or no smtpd at
#                              all when LISTEN is empty, and nothing chrooted
#                              (the private spool has no copy of /etc).
#                              main.cf: loopback only, IPv4, mydestination
#                              empty, mynetworks 127.0.0.0/8, its own log
#                              file; the lines read from stdin are appended
#                              (relayhost, transports...). Everything else
#                              is Postfix's default.
#   pf_start DIR / pf_stop DIR `postfix -c DIR/etc start|stop`; start returns
#                              once master.pid names a live process (10 s
#                              at most)
#   pf_master_pid DIR          the instance's master process
#   pf_queued DIR [QUEUE...]   files in the queues (default: maildrop,
#                              incoming, active, deferred)
#   pf_version                 e.g. 3.7.11
#
# Must never: touch /etc/postfix beyond reading master.cf, or start the
# system instance.

pf_require() {
    if ! [ -x /usr/sbin/postfix ] || ! [ -x /usr/sbin/smtp-sink ]; then
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix > /dev/null
    fi
}

pf_create() {
    pf_dir=$1
    rm -rf "$pf_dir"
    mkdir -p "$pf_dir/etc" "$pf_dir/spool" "$pf_dir/data"
    chown postfix "$pf_dir/data"
    awk -v listen="$2" '
        /^smtp[ \t]+inet/ { if (listen != "") print listen " inet n - n - - smtpd"; next }
        /^[a-z0-9]/ && NF >= 8 && $5 == "y" { $5 = "n" }
        { print }' /etc/postfix/master.cf > "$pf_dir/etc/master.cf"
    {
        cat <<EOF
compatibility_level = 3.6
queue_directory = $pf_dir/spool
data_directory = $pf_dir/data
myhostname = bench.postfix.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = $pf_dir/maillog
maillog_file_prefixes = $pf_dir
EOF
        cat
    } > "$pf_dir/etc/main.cf"
}

pf_master_pid() { sed -n 's/^ *\([0-9][0-9]*\).*/\1/p' "$1/spool/pid/master.pid" 2>/dev/null; }

pf_start() {
    postfix -c "$1/etc" start > /dev/null 2>&1
    for _ in $(seq 100); do
        p=$(pf_master_pid "$1")
        [ -n "$p" ] && kill -0 "$p" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "postfix: the private instance in $1 did not start" >&2
    return 1
}

pf_stop() { postfix -c "$1/etc" stop > /dev/null 2>&1 || true; }

pf_queued() {
    d=$1; shift
    [ $# -gt 0 ] || set -- maildrop incoming active deferred
    for q in "$@"; do find "$d/spool/$q" -type f 2>/dev/null; done | wc -l
}

pf_version() { postconf -d -h mail_version; }

# pf_relay DIR LISTEN RELAYHOST: pf_create with relayhost = RELAYHOST and no
# TLS to it, then started and given a second to settle
pf_relay() {
    printf 'relayhost = %s\nsmtp_tls_security_level = none\n' "$3" | pf_create "$1" "$2"
    pf_start "$1"
    sleep 1
}
