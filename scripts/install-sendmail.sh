#!/bin/sh
# install-sendmail.sh install|uninstall|guard DESTDIR SBINDIR — `make
# install-sendmail` and the undoing of it by `make uninstall` (INSTALL
# "Replacing Postfix").
#
# install makes the places where programs look for the MTA symbolic links
# to onehop's commands in SBINDIR:
#     /usr/sbin/sendmail, /usr/lib/sendmail -> SBINDIR/sendmail
#     /usr/bin/mailq                        -> SBINDIR/mailq
#     /usr/bin/newaliases                   -> SBINDIR/newaliases
# What was there is kept as NAME.pre-onehop: on the real system (DESTDIR
# empty) a file that belongs to a Debian package is diverted with
# `dpkg-divert --local --rename --divert NAME.pre-onehop`, so that a later
# upgrade of that package (postfix...) installs its version there and not
# over the link; anything else is renamed. A name that is SBINDIR's own
# command (PREFIX=/usr) is left alone, and so is a link already ours.
#
# uninstall removes each link that points into SBINDIR and puts back what
# install kept (the diversion removed, or NAME.pre-onehop renamed back).
#
# Must never: remove or overwrite a file it has not kept, or keep two
# backups of one name (an existing NAME.pre-onehop stops it).
set -eu
action=$1; destdir=$2; sbindir=$3
say() { printf 'install-sendmail.sh: %s\n' "$*" >&2; }
links="/usr/sbin/sendmail=sendmail /usr/lib/sendmail=sendmail /usr/bin/mailq=mailq"
links="$links /usr/bin/newaliases=newaliases"

packaged() { # path belongs to a Debian package (real system only)
    [ -z "$destdir" ] && command -v dpkg-divert >/dev/null && dpkg -S "$1" >/dev/null 2>&1
}
diverted() { # path is diverted by us
    [ -z "$destdir" ] && command -v dpkg-divert >/dev/null &&
        [ "$(dpkg-divert --truename "$1")" = "$1.pre-onehop" ]
}

keep_old() { # path: move what is there to path.pre-onehop
    if [ -e "$2.pre-onehop" ] || [ -L "$2.pre-onehop" ]; then
        say "$2.pre-onehop exists already: move it away first (nothing changed for $1)"
        exit 1
    fi
    if packaged "$1"; then
        dpkg-divert --local --rename --divert "$1.pre-onehop" --add "$1" >/dev/null
        say "diverted $1 ($(dpkg -S "$1.pre-onehop" 2>/dev/null | cut -d: -f1)) to $1.pre-onehop"
    else
        mv "$2" "$2.pre-onehop"
        say "kept the old $1 as $1.pre-onehop"
    fi
}

# guard (before make install): with PREFIX=/usr, SBINDIR's commands would
# overwrite a package's sendmail, mailq or newaliases (postfix's): refuse.
if [ "$action" = guard ]; then
    for c in sendmail mailq newaliases; do
        if packaged "$sbindir/$c" && ! diverted "$sbindir/$c"; then
            say "$sbindir/$c belongs to the package $(dpkg -S "$sbindir/$c" | cut -d: -f1):" \
                "install with PREFIX=/usr/local (the default) and make install-sendmail," \
                "or remove that package first (INSTALL)"
            exit 1
        fi
    done
    exit 0
fi

for entry in $links; do
    name=${entry%%=*}; target="$sbindir/${entry#*=}"; path="$destdir$name"
    [ "$name" != "$target" ] || continue
    case $action in
    install)
        if [ -L "$path" ] && [ "$(readlink "$path")" = "$target" ]; then
            continue
        fi
        if [ -e "$path" ] || [ -L "$path" ]; then
            keep_old "$name" "$path"
        fi
        mkdir -p "$(dirname "$path")"
        ln -s "$target" "$path"
        say "$name -> $target" ;;
    uninstall)
        if [ ! -L "$path" ] || [ "$(readlink "$path")" != "$target" ]; then
            continue
        fi
        rm -f "$path"
        if diverted "$name"; then
            dpkg-divert --local --rename --remove "$name" >/dev/null
            say "removed $name; the diverted original is back"
        elif [ -e "$path.pre-onehop" ] || [ -L "$path.pre-onehop" ]; then
            mv "$path.pre-onehop" "$path"
            say "removed $name; $name.pre-onehop is back"
        else
            say "removed $name"
        fi ;;
    *)
        echo "usage: install-sendmail.sh install|uninstall DESTDIR SBINDIR" >&2
        exit 2 ;;
    esac
done
