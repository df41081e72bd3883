#!/usr/bin/env bash
# Peak memory while N SMTP clients each hand over one message of M MiB at once: the figure in
# the README (memory per connection in DATA). A `bridgehead dev` cluster on loopback gives
# PostgreSQL and the back-end; a `bridgehead frontend` process of its own (mutual TLS with the
# dev back-end) takes the mail, so its peak resident set (VmHWM), read after the N messages
# were accepted, is the front-end's alone; the dev process's peak is printed beside it.
# Usage: tests/bench/smtp_memory.sh [N] [MIB]   (default 10 × 40 MiB). BH=path picks the binary.
set -euo pipefail
N=${1:-10}
MIB=${2:-40}
source "$(dirname "$0")/common.sh"
bench_setup memory
SMTP=$(free_port)
POP3=$(free_port)
start_dev "$(free_port)" "$POP3"
add_users mem.example 1 pw
dev=${PIDS[0]}
pki=$WORK/bh/pki
grpc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$WORK/bh/endpoints.json")
"$BH" frontend --backend "$grpc" --backend-ca "$pki/ca.pem" --backend-cert "$pki/frontend.pem" \
  --backend-key "$pki/frontend-key.pem" --smtp-listen "127.0.0.1:$SMTP" --hostname mx.mem.example \
  >"$WORK/frontend.log" 2>&1 &
PIDS+=($!)
pid=$!
wait_port "$SMTP"
before=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
python3 - "$SMTP" "$N" "$MIB" <<'PY'
import smtplib, sys, threading
port, n, mib = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
line = b"x" * 76 + b"\r\n"
body = b"Subject: big\r\n\r\n" + line * (mib * 1024 * 1024 // len(line))
failed = []
def send():
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=300) as s:
            s.sendmail("sender@outside.example", ["user0@mem.example"], body)
    except Exception as e:
        failed.append(e)
threads = [threading.Thread(target=send) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
if failed:
    sys.exit("failed: %r" % failed)
PY
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
dev_peak=$(awk '/^VmHWM/ {print $2}' "/proc/$dev/status")
echo "$N messages of $MIB MiB at once: front-end resident before $((before / 1024)) MiB," \
     "peak $((peak / 1024)) MiB, about $(((peak - before) / 1024 / N)) MiB per connection;" \
     "back-end (dev process) peak $((dev_peak / 1024)) MiB"
