"""An SMTP sink that keeps the mail: the sans-I/O core driven by blocking sockets.

Usage::

    python examples/smtp_sink.py --host 127.0.0.1 --port 2525 --dir ./mailproto-data/sink
        [--tls-cert CERT.pem --tls-key KEY.pem] [--user USER --password PASSWORD]
        [--max-size OCTETS]

Like Postfix's smtp-sink or aiosmtpd's Sink it accepts any mail for anyone, but it writes
each message to DIR as one ``.eml`` file: ``X-Envelope-From: <sender>``, one
``X-Envelope-To: <recipient>`` per recipient, then the message exactly as received (CRLF
line endings, dot-stuffing removed). Files are written under a hidden temporary name,
fsynced, then renamed, and 250 is sent only after that: a ``*.eml`` file is always whole.
``--port 0`` picks a free port; the first line printed is ``listening on HOST:PORT``.
Ctrl-C or SIGTERM stops it.

EHLO offers PIPELINING, SIZE, 8BITMIME, SMTPUTF8, CHUNKING, ENHANCEDSTATUSCODES and DSN,
STARTTLS when ``--tls-cert`` is given, and AUTH PLAIN LOGIN when ``--user`` is given
(MAIL then needs AUTH first: 530). With a certificate, AUTH is offered only once TLS is
on. Without one, AUTH works in plaintext (``allow_insecure_auth``): fine for tests on
loopback, nowhere else, since the password crosses the wire in the clear.

The protocol lives in `mailproto.smtp.ServerConnection`: this file moves bytes with
``sock.recv``/``sendall`` and decides what to answer. Replies are buffered and written
when the core needs more data, so a pipelined group of commands gets its replies in one
write (RFC 2920 section 3.2).
"""

from __future__ import annotations

import argparse
import hmac
import itertools
import os
import signal
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mailproto import NEED_DATA, RemoteProtocolError, sasl, smtp

HOSTNAME = socket.gethostname()


def canned(code: int, enhanced: str, text: str) -> smtp.Reply:
    return smtp.Reply(code=code, enhanced=enhanced, lines=text)


# Replies that depend on nothing but the command.
CANNED: dict[type[smtp.SMTPEvent], smtp.Reply] = {
    smtp.Rset: canned(250, "2.0.0", "Ok"),
    smtp.Noop: canned(250, "2.0.0", "Ok"),
    smtp.Help: canned(214, "2.0.0", "See RFC 5321"),
    smtp.Vrfy: canned(252, "2.5.0", "Cannot VRFY user, but will accept message"),
    smtp.Expn: canned(502, "5.5.1", "EXPN not implemented"),
    smtp.EndOfChunk: canned(250, "2.0.0", "Chunk received"),
    smtp.AuthCancel: canned(501, "5.7.0", "Authentication cancelled"),
    smtp.Quit: canned(221, "2.0.0", "Bye"),
}


@dataclass(frozen=True)
class Options:
    directory: Path
    max_size: int
    tls: ssl.SSLContext | None
    user: str | None
    password: str


class Spool:
    """One message on its way to the directory: hidden temp file, fsync, rename."""

    _numbers = itertools.count()

    def __init__(self, directory: Path, sender: str, recipients: list[str]) -> None:
        self.directory = directory
        self.name = f"{time.time_ns()}.{os.getpid()}.{next(self._numbers)}"
        self.tmp = directory / f".{self.name}.tmp"
        self.file = open(self.tmp, "xb")  # noqa: SIM115 (closed by commit or discard)
        lines = [f"X-Envelope-From: <{sender}>\r\n"]
        lines += [f"X-Envelope-To: <{rcpt}>\r\n" for rcpt in recipients]
        self.file.write("".join(lines).encode("utf-8"))

    def commit(self) -> str:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.rename(self.tmp, self.directory / f"{self.name}.eml")
        fd = os.open(self.directory, os.O_RDONLY)  # and make the rename durable too
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return self.name

    def discard(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)  # already gone after a commit


class Session:
    """One client connection, served by its own thread."""

    def __init__(self, sock: socket.socket, opts: Options) -> None:
        self.sock = sock
        self.opts = opts
        insecure_auth = opts.tls is None  # see the module docstring
        config = smtp.ServerConfig(
            max_message_size=opts.max_size, allow_insecure_auth=insecure_auth
        )
        self.conn = smtp.ServerConnection(config)
        self.out = bytearray()  # replies not written yet
        self.tls_active = self.authenticated = False
        self.sender = ""
        self.recipients: list[str] = []
        self.spool: Spool | None = None
        self.mechanism: sasl.ServerMechanism | None = None  # during AUTH

    def send(self, reply: smtp.Reply | smtp.AuthChallenge) -> None:
        self.out += self.conn.send(reply)

    def reply(self, code: int, enhanced: str | None, text: str) -> None:
        self.send(smtp.Reply(code=code, enhanced=enhanced, lines=text))

    def flush(self) -> None:
        self.sock.sendall(self.out)
        self.out.clear()

    def run(self) -> None:
        try:
            self.reply(220, None, f"{HOSTNAME} ESMTP mailproto smtp_sink")
            self.serve()
            self.flush()
        except OSError:
            pass  # the client went away, or TLS failed
        finally:
            self.drop_message()
            self.sock.close()

    def serve(self) -> None:
        try:
            while True:
                event = self.conn.next_event()
                if event is NEED_DATA:
                    self.flush()
                    try:
                        self.conn.receive_data(self.sock.recv(65536))
                    except TimeoutError:
                        self.reply(421, "4.4.2", "Idle for too long, closing")
                        return
                elif not isinstance(event, smtp.SMTPEvent):  # PAUSED: a reply is owed
                    raise AssertionError(f"every event is answered, yet {event!r}")
                elif not self.handle(event):
                    return
        except RemoteProtocolError as exc:  # the client broke SMTP: say why, then close
            if isinstance(exc.reply_hint, smtp.Reply):
                self.send(exc.reply_hint)

    def handle(self, event: smtp.SMTPEvent) -> bool:
        """Answer one event; False when the session is over."""
        match event:
            case smtp.Ehlo(domain=domain) | smtp.Helo(domain=domain):
                self.drop_message()
                lines = [f"{HOSTNAME} greets {domain}"]
                if isinstance(event, smtp.Ehlo):
                    lines += self.extensions()
                self.send(smtp.Reply(code=250, lines=lines))
            case smtp.MailFrom(sender=sender):
                if self.opts.user is not None and not self.authenticated:
                    self.reply(530, "5.7.0", "Authentication required")
                else:
                    self.drop_message()
                    self.sender = sender
                    self.reply(250, "2.1.0", "Sender ok")
            case smtp.RcptTo(recipient=recipient):
                self.recipients.append(recipient)
                self.reply(250, "2.1.5", "Recipient ok")
            case smtp.Data() | smtp.Bdat():  # a Bdat is answered at its chunk's end
                if self.spool is None:
                    self.spool = Spool(self.opts.directory, self.sender, self.recipients)
                if isinstance(event, smtp.Data):
                    self.reply(354, None, "End data with <CR><LF>.<CR><LF>")
            case smtp.MessageData(data=data):
                assert self.spool is not None
                self.spool.file.write(data)
            case smtp.EndOfMessage():
                assert self.spool is not None  # made at DATA or at the first BDAT
                try:
                    name = self.spool.commit()
                except OSError:
                    self.reply(451, "4.3.0", "Could not store the message, try again")
                else:
                    self.reply(250, "2.0.0", f"Ok: queued as {name}")
                self.drop_message()
            case smtp.CommandRejected(reply=reply) | smtp.MessageRejected(reply=reply):
                if isinstance(event, smtp.MessageRejected):
                    self.drop_message()  # the chunks written so far must go
                self.send(reply)
            case smtp.StartTLS():
                assert self.opts.tls is not None  # the core refuses it when not offered
                self.reply(220, "2.0.0", "Ready to start TLS")
                self.flush()
                self.conn.start_tls()  # raises if plaintext was pipelined after it
                self.sock = self.opts.tls.wrap_socket(self.sock, server_side=True)
                self.tls_active = True
            case smtp.Auth(mechanism=name, initial_response=initial):
                self.mechanism = sasl.server_mechanism(name)  # the core checked the name
                self.auth_step(self.mechanism.start(initial))
            case smtp.AuthResponse(data=data):
                assert self.mechanism is not None  # responses only follow our 334
                self.auth_step(self.mechanism.receive(data))
            case smtp.ConnectionClosed():
                return False
            case _:
                if isinstance(event, smtp.Rset):
                    self.drop_message()
                self.send(CANNED[type(event)])
                return not isinstance(event, smtp.Quit)
        return True

    def extensions(self) -> list[str]:
        lines = ["PIPELINING", f"SIZE {self.opts.max_size}", "8BITMIME", "SMTPUTF8"]
        lines += ["CHUNKING", "ENHANCEDSTATUSCODES", "DSN"]
        if self.opts.tls is not None and not self.tls_active:
            lines.append("STARTTLS")
        if self.opts.user is not None and (self.tls_active or self.opts.tls is None):
            lines.append("AUTH PLAIN LOGIN")
        return lines

    def auth_step(self, step: sasl.ServerStep) -> None:
        assert self.mechanism is not None
        if isinstance(step, sasl.VerifyPassword):
            user, password = (self.opts.user or "").encode(), self.opts.password.encode()
            user_ok = hmac.compare_digest(step.username.encode(), user)
            password_ok = hmac.compare_digest(step.password.encode(), password)
            authzid_ok = step.authzid in ("", step.username)
            step = self.mechanism.verified(user_ok and password_ok and authzid_ok)
        match step:
            case sasl.Challenge(data=data):
                self.send(smtp.AuthChallenge(data=data))
            case sasl.Success():
                self.authenticated = True
                self.reply(235, "2.7.0", "Authentication successful")
            case sasl.Failure(code="malformed"):
                self.reply(501, "5.5.2", "Malformed authentication exchange")
            case _:
                self.reply(535, "5.7.8", "Authentication credentials invalid")

    def drop_message(self) -> None:
        if self.spool is not None:
            self.spool.discard()
            self.spool = None
        self.sender, self.recipients = "", []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="An SMTP sink that keeps the mail.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525, help="0 picks a free port")
    parser.add_argument("--dir", type=Path, required=True, help="where .eml files go")
    parser.add_argument("--tls-cert", help="PEM certificate chain: offer STARTTLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--user", help="require AUTH PLAIN/LOGIN as this user")
    parser.add_argument("--password", help="the password of --user")
    parser.add_argument("--max-size", type=int, default=10_240_000, help="in octets")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")

    tls = None
    if args.tls_cert is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    args.dir.mkdir(parents=True, exist_ok=True)
    opts = Options(args.dir, args.max_size, tls, args.user, args.password or "")

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as on Ctrl-C
    with socket.create_server((args.host, args.port)) as listener:
        host, port = listener.getsockname()[:2]
        print(f"listening on {host}:{port}", flush=True)
        try:
            while True:
                sock, _ = listener.accept()
                sock.settimeout(300)  # RFC 5321 section 4.5.3.2.7: 5 minutes
                threading.Thread(target=Session(sock, opts).run, daemon=True).start()
        except KeyboardInterrupt:
            print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
