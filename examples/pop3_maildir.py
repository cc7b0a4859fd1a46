"""A POP3 server for one Maildir folder: the sans-I/O core driven by blocking sockets.

Usage::

    python examples/pop3_maildir.py --host 127.0.0.1 --port 2110 --maildir ~/Maildir
        --user USER --password PASSWORD [--tls-cert CERT.pem --tls-key KEY.pem]

It serves the messages of one Maildir folder (the files in DIR/cur and DIR/new) to one
user, one thread per connection. ``--port 0`` picks a free port; the first line printed
is always ``listening on HOST:PORT``. Ctrl-C (or SIGTERM) stops it.

The maildrop, as RFC 1939 sees it:

- Messages are numbered in the order of their file names, so the numbering is stable.
  The list is taken at login (the maildrop is a snapshot for the session) and the
  maildrop is locked for that session: a second login gets ``-ERR [IN-USE]``.
- A message is sent with CRLF line endings: bare LF (or CR) in the file becomes CRLF on
  the wire (the core's dot-stuffer repairs them), and a message without a final line
  ending gets one. The sizes of STAT and LIST count the octets sent that way.
- The unique-id (UIDL) of a message is its Maildir base name up to the ``:`` of the
  flags, or a SHA-256 of it if it is longer than 70 characters or uses characters
  outside 0x21-0x7E (RFC 1939 section 7).
- RETR streams the file in chunks, TOP reads the header and the lines it sends; neither
  holds a whole message in memory. DELE marks a message, and its file is removed only
  when QUIT arrives (UPDATE state); a session that ends any other way removes nothing.

Logins: USER/PASS, AUTH PLAIN (RFC 5034) and APOP (the greeting carries the timestamp).
Passwords are compared with `hmac.compare_digest`. With ``--tls-cert`` the server offers
STLS (RFC 2595) and accepts passwords in the clear (USER/PASS, AUTH PLAIN) only once TLS
is on (until then CAPA does not list USER and SASL, as Dovecot does); APOP, which never
sends the password, works either way. Without a certificate,
cleartext logins are allowed (``allow_insecure_auth``): fine on loopback for tests, not
across a network, since the password then crosses it in the clear.

The protocol lives in `mailproto.pop3.ServerConnection`; this file only moves bytes
(``sock.recv``/``sendall``) and decides what to answer. Responses are buffered and
written when the core needs more data, so pipelined commands (RFC 2449) get their
responses in one write.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import secrets
import signal
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mailproto import NEED_DATA, RemoteProtocolError, pop3
from mailproto.sasl import (
    Challenge,
    ServerMechanism,
    ServerStep,
    Success,
    VerifyPassword,
    server_mechanism,
)

CHUNK = 65536  # bytes read from a file or a socket at a time, and the write threshold
IDLE_TIMEOUT = 600  # RFC 1939 section 3: an autologout timer of at least 10 minutes


# --- the Maildir ---------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    path: Path
    uid: str
    size: int  # octets as sent: CRLF line endings, a final line ending


def unique_id(file_name: str) -> str:
    """The UIDL of a Maildir file: its base name (before ":"), if RFC 1939 allows it."""
    base = file_name.split(":", 1)[0]
    if pop3.uidl_ok(base):
        return base
    return hashlib.sha256(base.encode("utf-8", "surrogateescape")).hexdigest()


def wire_size(path: Path) -> int:
    """The size of a file once CR, LF and CRLF all became CRLF, with a final CRLF.

    Every line ending is counted as two octets: (CR + LF - CRLF) of them, where a CRLF
    split between two reads is found through the CR the previous read ended with.
    """
    size = endings = 0
    last = b""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            cr, lf = chunk.count(b"\r"), chunk.count(b"\n")
            crlf = chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
            size += len(chunk) - cr - lf
            endings += cr + lf - crlf
            last = chunk[-1:]
    if last not in (b"", b"\r", b"\n"):
        endings += 1  # the line ending the sender adds before the terminating "."
    return size + 2 * endings


def scan_maildir(maildir: Path) -> list[Message]:
    """The messages of the folder, in file name order (the POP3 message numbers)."""
    files: list[Path] = []
    for sub in ("cur", "new"):
        with os.scandir(maildir / sub) as entries:
            for entry in entries:
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    files.append(Path(entry.path))
    files.sort(key=lambda p: p.name)
    return [Message(p, unique_id(p.name), wire_size(p)) for p in files]


def top_chunks(f: BinaryIO, lines: int) -> Iterator[bytes]:
    """The header of a message, its blank line and the first ``lines`` body lines.

    Lines end at LF here (a bare-CR file counts as one long line); the dot-stuffer turns
    the line endings into CRLF whatever they are. Reads stay under CHUNK bytes each, so
    a file without line endings is not read whole either.
    """
    out = bytearray()
    in_body = False
    at_line_start = True
    while not in_body or lines > 0:
        piece = f.readline(CHUNK)
        if not piece:
            break
        complete = piece.endswith(b"\n")
        if in_body:
            lines -= complete
        elif at_line_start and piece in (b"\n", b"\r\n"):
            in_body = True  # the blank line that ends the header
        at_line_start = complete
        out += piece
        if len(out) >= CHUNK:
            yield bytes(out)
            out.clear()
    if out:
        yield bytes(out)


# --- the server ----------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    maildir: Path
    user: str
    password: str
    tls: ssl.SSLContext | None
    lock: threading.Lock  # RFC 1939 section 4: one session at a time owns the maildrop


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Session:
    """One client connection, in its own thread."""

    def __init__(self, sock: socket.socket, opts: Options) -> None:
        self.sock = sock
        self.opts = opts
        config = pop3.ServerConfig(allow_insecure_auth=opts.tls is None)
        self.conn = pop3.ServerConnection(config)
        self.out = bytearray()  # responses not yet written
        self.tls_active = False
        self.user = ""  # the name given with USER
        self.sasl: ServerMechanism | None = None  # the SASL exchange of an AUTH
        self.locked = False  # we hold opts.lock: the maildrop is ours
        self.messages: list[Message] = []

    # -- I/O ---------------------------------------------------------------------------

    def send(self, event: pop3.POP3Event) -> None:
        self.out += self.conn.send(event)
        if len(self.out) >= CHUNK:  # a long listing or message: don't buffer it all
            self.flush()

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out.clear()

    def run(self) -> None:
        try:
            host = socket.gethostname()
            stamp = f"<{os.getpid()}.{secrets.token_hex(8)}@{host}>"  # for APOP
            self.send(pop3.Ok(text=f"mailproto pop3_maildir ready {stamp}"))
            self.serve()
            self.flush()
        except OSError:
            pass  # the client went away, TLS failed, or the session timed out
        finally:
            if self.locked:
                self.opts.lock.release()
            self.sock.close()

    def serve(self) -> None:
        while True:
            try:
                event = self.conn.next_event()
                if event is NEED_DATA:
                    self.flush()
                    self.conn.receive_data(self.sock.recv(CHUNK))
                elif not isinstance(event, pop3.POP3Event):  # PAUSED: we owe a response
                    raise AssertionError(f"every command gets its response, yet {event!r}")
                elif not self.handle(event):
                    return
            except RemoteProtocolError as exc:  # the client broke POP3: say why, close
                if isinstance(exc.reply_hint, pop3.Err):
                    self.out += self.conn.send(exc.reply_hint)
                return

    # -- commands ----------------------------------------------------------------------

    def handle(self, event: pop3.POP3Event) -> bool:
        """Answer one event; False when the session is over."""
        match event:
            case pop3.CommandRejected(reply=reply):
                self.send(reply)
            case pop3.Capa():
                self.send(pop3.Ok(text="Capability list follows"))
                self.send(pop3.ResponseData(pop3.format_capabilities(self.capabilities())))
                self.send(pop3.EndOfResponse())
            case pop3.Stls():
                if self.opts.tls is None:
                    self.send(pop3.Err(text="STLS not available"))
                else:
                    self.send(pop3.Ok(text="Begin TLS negotiation"))
                    self.flush()
                    self.conn.start_tls()  # raises if the client pipelined plaintext
                    self.sock = self.opts.tls.wrap_socket(self.sock, server_side=True)
                    self.tls_active = True
            case pop3.User(name=name):
                self.user = name  # the same answer for every name: checked with PASS
                self.send(pop3.Ok(text="Send PASS"))
            case pop3.Pass(password=password):  # "&": compare both, whatever the first says
                self.login(_same(self.user, self.opts.user) & _same(password, self.opts.password))
            case pop3.Apop(name=name, digest=digest):
                stamp = self.conn.apop_timestamp
                assert stamp is not None  # our greeting carries one
                expected = pop3.apop_digest(stamp, self.opts.password)
                self.login(_same(name, self.opts.user) & _same(digest, expected))
            case pop3.Auth(mechanism=None):  # a bare AUTH lists the mechanisms
                self.send(pop3.Ok(text="Mechanisms follow"))
                if self.cleartext_ok():
                    self.send(pop3.ResponseData(b"PLAIN\r\n"))
                self.send(pop3.EndOfResponse())
            case pop3.Auth(mechanism="PLAIN", initial_response=initial):
                self.sasl = server_mechanism("PLAIN")
                self.auth_step(self.sasl.start(initial))
            case pop3.Auth():
                self.send(pop3.Err(text="Unsupported authentication mechanism"))
            case pop3.AuthResponse(data=data):
                assert self.sasl is not None  # the core sees no response without a "+"
                self.auth_step(self.sasl.receive(data))
            case pop3.AuthCancel():
                self.send(pop3.Err(text="Authentication cancelled"))
            case pop3.Utf8():
                self.send(pop3.Err(text="UTF8 not supported"))
            case pop3.Stat():
                live = self.live()
                self.send(pop3.Ok(text=f"{len(live)} {sum(m.size for _, m in live)}"))
            case pop3.List(msg=None):
                self.send(pop3.Ok(text=f"{len(self.live())} messages"))
                for n, m in self.live():
                    self.send(pop3.ResponseData(f"{n} {m.size}\r\n".encode()))
                self.send(pop3.EndOfResponse())
            case pop3.List(msg=int(n)):
                self.send(pop3.Ok(text=f"{n} {self.messages[n - 1].size}"))
            case pop3.Uidl(msg=None):
                self.send(pop3.Ok(text="Unique-ID listing follows"))
                for n, m in self.live():
                    self.send(pop3.ResponseData(f"{n} {m.uid}\r\n".encode()))
                self.send(pop3.EndOfResponse())
            case pop3.Uidl(msg=int(n)):
                self.send(pop3.Ok(text=f"{n} {self.messages[n - 1].uid}"))
            case pop3.Retr(msg=n):
                self.retrieve(n, None)
            case pop3.Top(msg=n, lines=lines):
                self.retrieve(n, lines)
            case pop3.Dele(msg=n):
                self.send(pop3.Ok(text=f"Message {n} deleted"))
            case pop3.Rset():
                self.send(pop3.Ok(text=f"Maildrop has {len(self.messages)} messages"))
            case pop3.Noop():
                self.send(pop3.Ok())
            case pop3.Quit():
                self.quit()
                return False
            case pop3.ConnectionClosed():
                return False
            case _:
                raise AssertionError(f"unexpected event {event!r}")
        return True

    def cleartext_ok(self) -> bool:
        """May a password cross this connection (USER/PASS, AUTH PLAIN)?"""
        return self.opts.tls is None or self.tls_active

    def capabilities(self) -> list[str]:
        caps = ["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"]
        if self.conn.state is pop3.AUTHORIZATION:
            if self.cleartext_ok():
                caps += ["USER", "SASL PLAIN"]
            if self.opts.tls is not None and not self.tls_active:
                caps.append("STLS")
        caps.append("IMPLEMENTATION mailproto-pop3_maildir")
        return caps

    def auth_step(self, step: ServerStep) -> None:
        assert self.sasl is not None
        if isinstance(step, VerifyPassword):
            user_ok = _same(step.username, self.opts.user)
            ok = user_ok & _same(step.password, self.opts.password)
            step = self.sasl.verified(ok and step.authzid in ("", self.opts.user))
        if isinstance(step, Challenge):
            self.send(pop3.AuthChallenge(data=step.data))
        else:
            self.sasl = None
            self.login(isinstance(step, Success))

    def login(self, ok: bool) -> None:
        """Answer a PASS, APOP or AUTH: open and lock the maildrop, or refuse."""
        if not ok:
            self.send(pop3.Err(code="AUTH", text="Authentication failed"))
        elif not self.opts.lock.acquire(blocking=False):
            self.send(pop3.Err(code="IN-USE", text="Maildrop already locked"))
        else:
            self.locked = True
            try:
                self.messages = scan_maildir(self.opts.maildir)
            except OSError:
                self.opts.lock.release()
                self.locked = False
                self.send(pop3.Err(code="SYS/TEMP", text="Cannot open the maildrop"))
                return
            self.conn.open_maildrop(len(self.messages))
            size = sum(m.size for m in self.messages)
            self.send(pop3.Ok(text=f"Maildrop has {len(self.messages)} messages ({size} octets)"))

    def live(self) -> list[tuple[int, Message]]:
        """(number, message) for every message not marked as deleted."""
        deleted = self.conn.deleted
        return [(n, m) for n, m in enumerate(self.messages, 1) if n not in deleted]

    def retrieve(self, n: int, top: int | None) -> None:
        """RETR (``top`` None) or TOP: stream the file, never the whole of it at once."""
        message = self.messages[n - 1]  # the core checked n against the maildrop
        try:
            f = open(message.path, "rb")  # noqa: SIM115 (closed below)
        except OSError:
            self.send(pop3.Err(code="SYS/PERM", text=f"Message {n} is gone"))
            return
        with f:
            self.send(pop3.Ok(text=f"{message.size} octets" if top is None else "Top follows"))
            chunks = iter(lambda: f.read(CHUNK), b"") if top is None else top_chunks(f, top)
            for chunk in chunks:
                self.send(pop3.ResponseData(chunk))
            self.send(pop3.EndOfResponse())

    def quit(self) -> None:
        """QUIT: in UPDATE state remove the files of the deleted messages, then +OK."""
        if self.conn.state is not pop3.UPDATE:
            self.send(pop3.Ok(text="Bye"))
            return
        failed = 0
        for n in sorted(self.conn.deleted):
            try:
                self.messages[n - 1].path.unlink()
            except FileNotFoundError:
                pass  # gone already: what DELE asked for
            except OSError:
                failed += 1
        if failed:
            self.send(pop3.Err(code="SYS/TEMP", text="Some deleted messages not removed"))
        else:
            self.send(pop3.Ok(text="Bye"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2110, help="0 picks a free port")
    parser.add_argument("--maildir", type=Path, required=True, help="the Maildir folder")
    parser.add_argument("--user", required=True, help="the one user's name")
    parser.add_argument("--password", required=True, help="the one user's password")
    parser.add_argument("--tls-cert", help="PEM certificate chain: offers STLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    for sub in ("cur", "new"):
        if not (args.maildir / sub).is_dir():
            parser.error(f"{args.maildir} is not a Maildir folder (no {sub}/)")

    tls = None
    if args.tls_cert is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    opts = Options(args.maildir, args.user, args.password, tls, threading.Lock())

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C
    with socket.create_server((args.host, args.port)) as listener:
        host, port = listener.getsockname()[:2]
        print(f"listening on {host}:{port}", flush=True)
        try:
            while True:
                sock, _ = listener.accept()
                sock.settimeout(IDLE_TIMEOUT)
                threading.Thread(target=Session(sock, opts).run, daemon=True).start()
        except KeyboardInterrupt:
            print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
