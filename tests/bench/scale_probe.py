"""Timed client probes for scale.sh, with the standard library's clients (poplib, smtplib).

  scale_probe.py pop3 PORT USER PASSWORD DELETE PIDS...
      One POP3 session on a big mailbox: login + STAT + UIDL (time, login and UIDL apart,
      octets UIDL sent), RETR of
      the last message (median of 5), then DELE of the first DELETE messages and QUIT (time).
      The resident memory of each PID (kB) is read before login and again while the session
      is open after UIDL. Prints one JSON object.
  scale_probe.py rcpt PORT DOMAIN ACCOUNTS PROCESSES SECONDS
      PROCESSES connections, each repeating MAIL FROM, 50 RCPT TO of random existing accounts
      u<k>@DOMAIN and RSET for SECONDS. Prints {"rcpt_per_s": …}; fails on any refused RCPT.
  scale_probe.py retr PORT USER_PATTERN PASSWORD PROCESSES
      PROCESSES clients at once, one command at a time (no pipelining), each logs in as
      USER_PATTERN with {n} = its number and RETRs every message. Prints {"retr_per_s": …}.
Loopback only; every failure is an exception (a non-zero exit).
"""
import json
import multiprocessing
import poplib
import random
import smtplib
import statistics
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def pop3(port, user, password, delete, pids):
    before = {p: rss_kb(p) for p in pids}
    t0 = time.perf_counter()
    p = poplib.POP3("127.0.0.1", int(port), timeout=600)
    p.user(user)
    p.pass_(password)
    t_login = time.perf_counter() - t0
    count, octets = p.stat()
    t = time.perf_counter()
    resp, lines, uidl_octets = p.uidl()
    t_uidl = time.perf_counter() - t
    t_list = time.perf_counter() - t0
    assert len(lines) == count, (len(lines), count)
    during = {p_: rss_kb(p_) for p_ in pids}
    retr = []
    for _ in range(5):
        t = time.perf_counter()
        _, body, _ = p.retr(count)
        retr.append(time.perf_counter() - t)
        assert body, "empty message"
    for n in range(1, int(delete) + 1):
        p.dele(n)
    t = time.perf_counter()
    p.quit()
    t_quit = time.perf_counter() - t
    return {
        "messages": count,
        "octets": octets,
        "login_s": t_login,
        "uidl_s": t_uidl,
        "login_stat_uidl_s": t_list,
        "uidl_octets": uidl_octets,
        "retr_last_s": statistics.median(retr),
        "quit_delete_s": t_quit,
        "rss_before_kb": before,
        "rss_during_kb": during,
    }


def rcpt_worker(args):
    port, domain, accounts, seconds, seed = args
    rnd = random.Random(seed)
    s = smtplib.SMTP("127.0.0.1", int(port), timeout=60)
    s.ehlo("probe.example")
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        code, msg = s.mail("probe@outside.example")
        assert code == 250, (code, msg)
        for _ in range(50):
            k = rnd.randrange(accounts)
            code, msg = s.rcpt(f"u{k}@{domain}")
            assert code == 250, (k, code, msg)
            n += 1
        s.rset()
    s.quit()
    return n


def rcpt(port, domain, accounts, processes, seconds):
    args = [(port, domain, int(accounts), float(seconds), i) for i in range(int(processes))]
    t = time.perf_counter()
    with multiprocessing.Pool(int(processes)) as pool:
        total = sum(pool.map(rcpt_worker, args))
    return {"rcpt_per_s": total / (time.perf_counter() - t), "rcpts": total}


def retr_worker(args):
    port, user, password, start_at = args
    p = poplib.POP3("127.0.0.1", int(port), timeout=120)
    p.user(user)
    p.pass_(password)
    count, _ = p.stat()
    # Every client logged in first; then all read at once.
    time.sleep(max(0.0, start_at - time.time()))
    t = time.time()
    for n in range(1, count + 1):
        p.retr(n)
    end = time.time()
    p.quit()
    return count, t, end


def retr(port, pattern, password, processes):
    start_at = time.time() + 2.0
    args = [(port, pattern.replace("{n}", str(i)), password, start_at)
            for i in range(int(processes))]
    with multiprocessing.Pool(int(processes)) as pool:
        done = pool.map(retr_worker, args)
    messages = sum(c for c, _, _ in done)
    assert messages > 0, "no messages to retrieve"
    wall = max(e for _, _, e in done) - min(s for _, s, _ in done)
    return {"retr_per_s": messages / wall, "messages": messages}


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "pop3":
        out = pop3(args[0], args[1], args[2], args[3], [int(a) for a in args[4:]])
    elif cmd == "rcpt":
        out = rcpt(*args)
    elif cmd == "retr":
        out = retr(*args)
    else:
        raise SystemExit(f"unknown probe {cmd}")
    print(json.dumps(out))
