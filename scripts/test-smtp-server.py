#!/usr/bin/python3
"""A real SMTP server for the outbox tests (Debian's python3-aiosmtpd).

usage: test-smtp-server.py MAILDIR [CERT KEY USER PASSWORD]

Listens on 127.0.0.1 on a port the kernel picks (so it never collides with another test's) and
writes that port to MAILDIR/port. Each message received is stored as MAILDIR/<n>.eml, preceded by
an "X-Authenticated:" line. With CERT and KEY, STARTTLS is required, then AUTH with USER and
PASSWORD.
"""
import asyncio
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

maildir = sys.argv[1]
tls = len(sys.argv) == 6


class Handler:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(maildir, "%d.eml" % len([n for n in os.listdir(maildir) if n.endswith(".eml")]))
        with open(name + ".tmp", "wb") as f:
            f.write(b"X-Authenticated: " + str(bool(session.authenticated)).encode() + b"\r\n" + envelope.original_content)
        os.rename(name + ".tmp", name)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == sys.argv[4].encode() and data.password == sys.argv[5].encode()
    return AuthResult(success=ok, handled=False)


def factory():
    if not tls:
        return SMTP(Handler(), hostname="localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    return SMTP(Handler(), hostname="localhost", tls_context=context, require_starttls=True,
                authenticator=authenticator, auth_require_tls=True)


async def main():
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    with open(os.path.join(maildir, "port.tmp"), "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    os.rename(os.path.join(maildir, "port.tmp"), os.path.join(maildir, "port"))
    await asyncio.Event().wait()


asyncio.run(main())
