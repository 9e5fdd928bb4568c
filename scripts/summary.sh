#!/bin/sh
# summary.sh RESULTS_DIR... — add up every *.counts file ("passed failed
# skipped") and print the closing line "N passed, N failed, N skipped".
# Exit 1 when anything failed.
set -u
passed=0; failed=0; skipped=0
for d in "$@"; do
    for f in "$d"/*.counts; do
        [ -f "$f" ] || continue
        read -r p fl s < "$f"
        echo "    $(basename "$(dirname "$(dirname "$f")")")/$(basename "$f" .counts): $p passed, $fl failed, $s skipped"
        passed=$((passed + p)); failed=$((failed + fl)); skipped=$((skipped + s))
    done
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
