"""SMTP load for crash tests: threads send messages with unique Message-IDs to two recipients
for a while, reconnecting after any error, and record which messages got a 250.

Usage: smtp_load.py HOST PORT SECONDS THREADS RCPT1 RCPT2 OUTFILE [ID-PREFIX]
OUTFILE gets {"accepted": [[id, [recipients that took it], unix time]], "errors": {kind: count}}.
"""
import json
import smtplib
import sys
import threading
import time

host, port, seconds, threads = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rcpts, out = [sys.argv[5], sys.argv[6]], sys.argv[7]
prefix = sys.argv[8] if len(sys.argv) > 8 else ""
accepted, errors, lock = [], {}, threading.Lock()
deadline = time.time() + seconds


def note(kind):
    with lock:
        errors[kind] = errors.get(kind, 0) + 1


def worker(w):
    i = 0
    while time.time() < deadline:
        try:
            s = smtplib.SMTP(host, port, timeout=10)
            s.ehlo("load.example")
            for _ in range(5):
                if time.time() >= deadline:
                    break
                i += 1
                mid = "%s%d-%d@load.example" % (prefix, w, i)
                msg = "From: <load@outside.example>\r\nMessage-ID: <%s>\r\nSubject: %s\r\n\r\nbody\r\n" % (mid, mid)
                try:
                    refused = s.sendmail("load@outside.example", rcpts, msg)
                    with lock:
                        accepted.append([mid, [r for r in rcpts if r not in refused], time.time()])
                except smtplib.SMTPResponseException as e:
                    note(str(e.smtp_code))
                except smtplib.SMTPRecipientsRefused as e:
                    note("rcpt " + str(list(e.recipients.values())[0][0]))
            s.quit()
        except (OSError, smtplib.SMTPException) as e:
            note(type(e).__name__)
            time.sleep(0.05)


ts = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
with open(out, "w") as f:
    json.dump({"accepted": accepted, "errors": errors}, f)
