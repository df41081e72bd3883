"""A destination SMTP server for transport tests, on aiosmtpd.

Usage: sink.py PORT OUTFILE [--tls CERT KEY] [--reject TEXT] [--defer TEXT] [--slow SECONDS]
       [--auth USER:SECRET] [--smtputf8] [--no-8bitmime] [--requiretls] [--host ADDRESS]
Each message received is appended to OUTFILE as one JSON line. Recipients containing the
--reject text get 550 5.1.1, those containing the --defer text 451 4.3.0. --slow N waits N
seconds before answering the end of DATA (noting the start in OUTFILE.data-started). With --tls the
server offers STARTTLS. --smtputf8 offers SMTPUTF8; --no-8bitmime leaves 8BITMIME out of the EHLO
reply (a 7-bit-only peer). --requiretls offers RFC 8689 REQUIRETLS over TLS and takes the MAIL
parameter. Each record has the MAIL parameters. Prints "ready" once listening; stops when its standard input closes.
"""
import argparse
import asyncio
import time
import json
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class RequireTlsSMTP(SMTP):
    """Takes the REQUIRETLS MAIL parameter (it stays in the envelope's mail_options)."""

    def _getparams(self, params):
        result = super()._getparams(params)
        if result is not None:
            result.pop("REQUIRETLS", None)
        return result


class RequireTlsController(Controller):
    def factory(self):
        return RequireTlsSMTP(self.handler, **self.SMTP_kwargs)


class Handler:
    def __init__(self, out, reject, defer, slow, no_8bitmime, requiretls):
        self.out, self.reject, self.defer, self.slow = out, reject, defer, slow
        self.no_8bitmime, self.requiretls = no_8bitmime, requiretls

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.no_8bitmime:
            responses = [r for r in responses if "8BITMIME" not in r]
        if self.requiretls and session.ssl is not None:
            responses = responses[:-1] + ["250-REQUIRETLS"] + responses[-1:]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject in address:
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        if self.defer and self.defer in address:
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        started = time.time()
        if self.slow:
            with open(self.out + ".data-started", "a") as f:
                f.write("%f\n" % started)
            await asyncio.sleep(self.slow)
        record = {
            "started": started,
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "rcpt_options": envelope.rcpt_options,
            "data": envelope.original_content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
        }
        with open(self.out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 OK queued"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("out")
    p.add_argument("--tls", nargs=2)
    p.add_argument("--reject")
    p.add_argument("--defer")
    p.add_argument("--slow", type=float, default=0.0)
    p.add_argument("--auth", help="USER:SECRET required (over TLS) before MAIL")
    p.add_argument("--smtputf8", action="store_true")
    p.add_argument("--no-8bitmime", action="store_true")
    p.add_argument("--requiretls", action="store_true")
    a = p.parse_args()
    ctx = None
    if a.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
    handler = Handler(a.out, a.reject, a.defer, a.slow, a.no_8bitmime, a.requiretls)
    extra = {}
    if a.auth:
        user, secret = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and \
                auth_data.login.decode() == user and auth_data.password.decode() == secret
            return AuthResult(success=ok)

        extra = dict(authenticator=authenticator, auth_required=True, auth_require_tls=True)
    controller = RequireTlsController if a.requiretls else Controller
    c = controller(handler, hostname=a.host, port=a.port, tls_context=ctx,
                   require_starttls=False, ready_timeout=20, enable_SMTPUTF8=a.smtputf8, **extra)
    c.start()
    print("ready", flush=True)
    sys.stdin.read()
    c.stop()


if __name__ == "__main__":
    main()
