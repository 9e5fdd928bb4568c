# shellcheck shell=sh
# install-lib.sh — shell functions shared by make-run.sh and install-*.sh
# (sourced, never run).
#
# conf_value FILE KEY DEFAULT   FILE's value of KEY (onehop.conf syntax: the
#                               last setting wins; a trailing # comment and
#                               white space cut), else DEFAULT
# conf_path FILE KEY DEFAULT    the same made absolute: a relative path is
#                               relative to FILE's directory (SPEC 1)
conf_value() {
    _v=$(sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1" | tail -n 1 |
        sed 's/[[:space:]]*#.*$//; s/[[:space:]]*$//')
    echo "${_v:-$3}"
}
conf_path() {
    _v=$(conf_value "$1" "$2" "$3")
    case $_v in /*) echo "$_v" ;; *) echo "$(dirname "$1")/$_v" ;; esac
}
