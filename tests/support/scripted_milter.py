"""A scripted milter for the milter protocol tests: listens on 127.0.0.1:argv[1] (and notes
each connection it accepts as a line in the file argv[2]), answers
option negotiation (protocol 6, every action), continues every step, and at end of message
does what the message's Subject says — each reply and modification the protocol has, and the
ways a filter can misbehave (garbage, a 4 GiB length, silence, a reset in the body)."""
import socket, struct, sys, threading, time

def packet(code, data=b""):
    return struct.pack(">I", len(data) + 1) + code + data

def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf

def at_end(subject):
    """The replies to end of message for a subject."""
    z = lambda *parts: b"".join(p.encode() + b"\0" for p in parts)
    idx = lambda i: struct.pack(">I", i)
    if subject == "modify":
        return [packet(b"h", z("X-Added", "yes")),
                packet(b"i", idx(0) + z("X-Top", "first")),
                packet(b"m", idx(1) + z("Subject", "changed by the milter")),
                packet(b"m", idx(1) + z("X-Remove", "")),
                packet(b"b", b"replaced body\r\nsecond line\r\n"),
                packet(b"+", z("<bob@example.com>")),
                packet(b"-", z("<alice@example.com>")),
                packet(b"e", z("<new@sender.test>")),
                packet(b"c")]
    if subject == "discard":
        return [packet(b"d")]
    if subject == "code":
        return [packet(b"y", z("553 5.7.0 Not today"))]
    if subject == "tempfail":
        return [packet(b"t")]
    if subject == "reject":
        return [packet(b"r")]
    if subject == "quarantine":
        return [packet(b"q", z("held for review")), packet(b"a")]
    if subject == "progress":
        return [packet(b"p"), packet(b"p"), packet(b"c")]
    if subject == "garbage":
        return [packet(b"Z", b"what")]
    if subject == "huge":
        return [b"\xff\xff\xff\xff" + b"h" * 64]
    if subject == "silent":
        return None
    return [packet(b"c")]

def serve(conn):
    subject = ""
    try:
        while True:
            length = struct.unpack(">I", read_exact(conn, 4))[0]
            data = read_exact(conn, length)
            code, body = data[:1], data[1:]
            if code == b"O":
                conn.sendall(packet(b"O", struct.pack(">III", 6, 0x1FF, 0)))
            elif code == b"D":
                # Macros (no reply): noted as "STAGE NAME=VALUE" lines in argv[2].macros.
                parts = body[1:].split(b"\0")
                with open(sys.argv[2] + ".macros", "a") as log:
                    for name, value in zip(parts[0::2], parts[1::2]):
                        log.write("%s %s=%s\n" % (body[:1].decode(), name.decode(), value.decode()))
            elif code == b"L":
                name, value = body.split(b"\0")[:2]
                if name.lower() == b"subject":
                    subject = value.decode().strip()
                conn.sendall(packet(b"c"))
            elif code == b"B":
                if subject == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
                    return
                conn.sendall(packet(b"c"))
            elif code == b"E":
                replies = at_end(subject)
                if replies is None:
                    time.sleep(30)
                    return
                for r in replies:
                    conn.sendall(r)
                    if subject == "progress":
                        time.sleep(0.3)
            elif code in (b"Q", b"A"):
                if code == b"Q":
                    return
            else:
                conn.sendall(packet(b"c"))
    except (EOFError, OSError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass

def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = s.accept()
        with open(sys.argv[2], "a") as log:
            log.write("connection\n")
        threading.Thread(target=serve, args=(conn,), daemon=True).start()

main()
