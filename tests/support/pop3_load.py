"""POP3 sessions for crash tests: for each account, log in, mark every message deleted, then
QUIT (odd accounts) or drop the connection without QUIT (even accounts), retrying the login
while the service is unavailable.

Usage: pop3_load.py HOST PORT PASSWORD OUTFILE ACCOUNT...
OUTFILE gets {account: {"quit_ok": bool, "sent_quit": bool}}.
"""
import json
import poplib
import sys
import threading
import time

host, port, password, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
accounts = sys.argv[5:]
results, lock = {}, threading.Lock()


def session(i, account):
    quit_wanted = i % 2 == 1
    result = {"quit_ok": False, "sent_quit": False}
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            c = poplib.POP3(host, port, timeout=10)
            c.user(account)
            c.pass_(password)
            count = c.stat()[0]
            for n in range(1, count + 1):
                c.dele(n)
                time.sleep(0.02)
            if quit_wanted:
                result["sent_quit"] = True
                c.quit()
                result["quit_ok"] = True
            else:
                c.sock.close()  # cut before QUIT
            break
        except (OSError, poplib.error_proto):
            if result["sent_quit"]:
                break  # the QUIT's outcome is unknown; do not try again
            time.sleep(0.1)
    with lock:
        results[account] = result


threads = [threading.Thread(target=session, args=(i, a)) for i, a in enumerate(accounts)]
for t in threads:
    t.start()
    time.sleep(0.05)
for t in threads:
    t.join()
with open(out, "w") as f:
    json.dump(results, f)
