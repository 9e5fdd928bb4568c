# bench/message.sh — the benchmark message, sourced by bench/inject.sh and
# bench/inject_cost.sh (sh; needs $PY and $top).
#
#   make_message FILE        a 4,096-byte message with the usual header fields
#   encode_message FILE REC  the same as inject_proto.h records (one
#                            transaction, bench@a.test to rcpt@b.test), what
#                            onehop-queue one-shot reads on fd 0

make_message() {
    {
        echo "From: Bench Sender <bench@a.test>"
        echo "To: <rcpt@b.test>"
        echo "Subject: injection benchmark"
        echo "Date: Thu, 01 Jan 2026 00:00:00 +0000"
        echo "Message-ID: <bench@a.test>"
        echo
        i=0
        while [ $i -lt 53 ]; do
            echo "This line is filler to make the message four kibibytes long. 0123456789"
            i=$((i + 1))
        done
    } > "$1"
    pad=$((4096 - $(wc -c < "$1") - 1))     # exactly 4096 bytes
    awk -v n="$pad" 'BEGIN { s = ""; while (length(s) < n) s = s "-"; print s }' >> "$1"
}

encode_message() {
    "$PY" - "$top" "$1" "$2" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1] + "/tests/integration")
import injproto as ip
data = open(sys.argv[2], "rb").read()
open(sys.argv[3], "wb").write(ip.message_records(1, "bench@a.test", ["rcpt@b.test"], data))
PYEOF
}
