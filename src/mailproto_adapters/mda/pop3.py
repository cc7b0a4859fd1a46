"""The POP3 session (RFC 1939, 2449, 2595, 5034) over a user's INBOX in the MDA store.

Written once as a flow of effects, run by every flavour's ``serve()``; the protocol is
`mailproto.pop3.ServerConnection`, this module decides the answers:

- Logins: USER/PASS and SASL PLAIN/LOGIN only over TLS unless the MDA allows plaintext,
  SASL SCRAM-SHA-256 always, APOP when some user opted into it (only then does the
  greeting carry a timestamp). All go through the `Authenticator`; a failure is answered
  only after the throttling delay it asks for (a `Call` to `_calls.pause`, which
  awaits in an event loop and sleeps in a thread).
- The maildrop is the INBOX as it was at login, locked for the session: a second
  session of the same user, in this process or another, gets ``-ERR [IN-USE]``.
- UIDL is ``<uidvalidity>.<uid>``: stable across sessions and restarts. Sizes are the
  store's virtual size (line endings counted as CRLF).
- RETR and TOP stream the stored file in 64 KiB chunks. DELE only marks; QUIT in the
  UPDATE state sets ``\\Deleted`` on the marked messages and expunges exactly those.
  A session that ends any other way changes nothing.
- A session idle for ``MDA.pop3_idle_timeout`` seconds (10 min) is closed (RFC 1939
  section 3: no UPDATE).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

import attrs

from mailproto import NEED_DATA, RemoteProtocolError, pop3
from mailproto.sasl import Challenge

from .._calls import blocking_call, pause
from .._effects import Call, Op, Receive, Send, StartTLS, TransportInfo
from .._serving import STARTTLS_TIMEOUT
from .._transport import TransportTimeout
from .auth import AuthExchange, AuthOutcome
from .store import Mailbox

if TYPE_CHECKING:
    from .service import MDA

__all__ = ["pop3_flow"]

log = logging.getLogger("mailproto.pop3")

CHUNK = 65536


@attrs.frozen
class _Message:
    uid: int
    size: int
    uidl: str


@attrs.frozen
class _Maildrop:
    box: Mailbox
    messages: list[_Message]


def open_maildrop(mda: MDA, user: str) -> _Maildrop:
    """The user's INBOX as a POP3 maildrop: a snapshot, in UID order."""
    box = mda.user_store(user).mailbox("INBOX")
    records = box.snapshot()
    meta = box.metadata_many(r.uid for r in records)
    validity = box.uidvalidity
    messages = [
        _Message(
            r.uid, meta[r.uid].virtual_size if r.uid in meta else r.size, f"{validity}.{r.uid}"
        )
        for r in records
    ]
    return _Maildrop(box, messages)


def remove(box: Mailbox, uids: list[int]) -> None:
    """UPDATE: the DELE'd messages get \\Deleted and are expunged (only those)."""
    if uids:
        box.set_flags(uids, ["\\Deleted"], "add")
        box.expunge(uids)


def top_chunks(f: IO[bytes], lines: int) -> Iterator[bytes]:
    """The header, the blank line and the first ``lines`` body lines, in chunks."""
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
            in_body = True
        at_line_start = complete
        out += piece
        if len(out) >= CHUNK:
            yield bytes(out)
            out.clear()
    if out:
        yield bytes(out)


class _Session:
    """The state of one POP3 connection; `run` is its flow."""

    def __init__(self, mda: MDA, info: TransportInfo) -> None:
        self.mda = mda
        self.tls = info.tls is not None
        self.ip = info.peer[0] if info.peer else "?"
        config = pop3.ServerConfig(allow_insecure_auth=mda.allow_plaintext, tls=self.tls)
        self.conn = pop3.ServerConnection(config)
        self.out = bytearray()
        self.user = ""
        self.exchange: AuthExchange | None = None
        self.success: AuthOutcome | None = None  # SASL success data sent, awaiting ""
        self.release: Callable[[], None] | None = None
        self.drop: _Maildrop | None = None

    def send(self, event: pop3.POP3Event) -> None:
        self.out += self.conn.send(event)

    def flush(self) -> Op[None]:
        if self.out:
            yield Send(bytes(self.out), timeout=self.mda.pop3_idle_timeout)
            self.out.clear()

    def plaintext_ok(self) -> bool:
        return self.tls or self.mda.allow_plaintext

    def mechanisms(self) -> list[str]:
        return self.mda.authenticator.mechanisms(self.tls, self.mda.allow_plaintext)

    def run(self) -> Op[None]:
        greeting = f"{self.mda.hostname} POP3 ready"
        has_apop = yield blocking_call(self.mda.users.has_apop_users)
        if has_apop:
            greeting += f" <{os.getpid()}.{secrets.token_hex(8)}@{self.mda.hostname}>"
        self.send(pop3.Ok(text=greeting))
        try:
            while True:
                try:
                    event = self.conn.next_event()
                except RemoteProtocolError as exc:
                    if isinstance(exc.reply_hint, pop3.Err):
                        self.send(exc.reply_hint)
                    break
                if event is NEED_DATA:
                    yield from self.flush()
                    try:
                        data = yield Receive(timeout=self.mda.pop3_idle_timeout)
                    except TransportTimeout:
                        break  # autologout: no UPDATE (RFC 1939 section 3)
                    self.conn.receive_data(data)
                    continue
                if not isinstance(event, pop3.POP3Event):
                    raise AssertionError(f"every command gets its response, yet {event!r}")
                if not (yield from self.handle(event)):
                    break
            yield from self.flush()
        finally:
            self.unlock()

    def handle(self, event: pop3.POP3Event) -> Op[bool]:
        """Answer one event; False when the session is over."""
        match event:
            case pop3.CommandRejected(reply=reply):
                self.send(reply)
            case pop3.Capa():
                self.send(pop3.Ok(text="Capability list follows"))
                self.send(pop3.ResponseData(pop3.format_capabilities(self.capabilities())))
                self.send(pop3.EndOfResponse())
            case pop3.Stls():
                context = self.mda.tls_context
                if context is None or self.tls:
                    self.send(pop3.Err(text="STLS not available"))
                else:
                    self.send(pop3.Ok(text="Begin TLS negotiation"))
                    yield from self.flush()
                    self.conn.start_tls()
                    yield StartTLS(context, server_side=True, timeout=STARTTLS_TIMEOUT)
                    self.tls = True
            case pop3.User(name=name):
                self.user = name
                self.send(pop3.Ok(text="Send PASS"))
            case pop3.Pass(password=password):
                outcome = yield blocking_call(
                    self.mda.authenticator.check_login, self.user, password, self.ip
                )
                yield from self.finish(outcome)
            case pop3.Apop(name=name, digest=digest):
                stamp = self.conn.apop_timestamp or ""
                outcome = yield blocking_call(
                    self.mda.authenticator.check_apop, name, digest, stamp, self.ip
                )
                yield from self.finish(outcome)
            case pop3.Auth(mechanism=None):
                self.send(pop3.Ok(text="Mechanisms follow"))
                self.send(
                    pop3.ResponseData("".join(m + "\r\n" for m in self.mechanisms()).encode())
                )
                self.send(pop3.EndOfResponse())
            case pop3.Auth(mechanism=str(mechanism), initial_response=initial):
                if mechanism.upper() not in self.mechanisms():
                    self.send(pop3.Err(text="Unsupported authentication mechanism"))
                else:
                    self.exchange = self.mda.authenticator.authenticate(
                        mechanism.upper(),
                        peer_ip=self.ip,
                        tls=self.tls,
                        allow_plaintext=self.mda.allow_plaintext,
                    )
                    step = yield blocking_call(self.exchange.start, initial)
                    yield from self.auth_step(step)
            case pop3.AuthResponse(data=data):
                if self.success is not None:
                    outcome, self.success = self.success, None
                    if data:
                        outcome = attrs.evolve(outcome, ok=False, code="malformed")
                    yield from self.finish(outcome)
                else:
                    assert self.exchange is not None
                    step = yield blocking_call(self.exchange.receive, data)
                    yield from self.auth_step(step)
            case pop3.AuthCancel():
                if self.exchange is not None:
                    self.exchange.abort()
                self.exchange = self.success = None
                self.send(pop3.Err(text="Authentication cancelled"))
            case pop3.Utf8():
                self.send(pop3.Err(text="UTF8 not supported"))
            case pop3.Stat():
                live = self.live()
                self.send(pop3.Ok(text=f"{len(live)} {sum(m.size for _, m in live)}"))
            case pop3.List(msg=None):
                live = self.live()
                self.send(pop3.Ok(text=f"{len(live)} messages"))
                self.send(pop3.ResponseData(b"".join(b"%d %d\r\n" % (n, m.size) for n, m in live)))
                self.send(pop3.EndOfResponse())
            case pop3.List(msg=int(n)):
                self.send(pop3.Ok(text=f"{n} {self.message(n).size}"))
            case pop3.Uidl(msg=None):
                live = self.live()
                self.send(pop3.Ok(text="Unique-ID listing follows"))
                self.send(
                    pop3.ResponseData(
                        b"".join(b"%d %s\r\n" % (n, m.uidl.encode()) for n, m in live)
                    )
                )
                self.send(pop3.EndOfResponse())
            case pop3.Uidl(msg=int(n)):
                self.send(pop3.Ok(text=f"{n} {self.message(n).uidl}"))
            case pop3.Retr(msg=n):
                yield from self.retrieve(n, None)
            case pop3.Top(msg=n, lines=lines):
                yield from self.retrieve(n, lines)
            case pop3.Dele(msg=n):
                self.send(pop3.Ok(text=f"Message {n} deleted"))
            case pop3.Rset():
                count = len(self.drop.messages) if self.drop else 0
                self.send(pop3.Ok(text=f"Maildrop has {count} messages"))
            case pop3.Noop():
                self.send(pop3.Ok())
            case pop3.Quit():
                yield from self.quit()
                return False
            case pop3.ConnectionClosed():
                return False
            case _:
                raise AssertionError(f"unexpected event {event!r}")
        return True

    def capabilities(self) -> list[str]:
        caps = ["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"]
        if self.conn.state is pop3.AUTHORIZATION:
            if self.plaintext_ok():
                caps.append("USER")
            caps.append("SASL " + " ".join(self.mechanisms()))
            if self.mda.tls_context is not None and not self.tls:
                caps.append("STLS")
        caps.append("IMPLEMENTATION mailproto-mda")
        return caps

    def auth_step(self, step: Challenge | AuthOutcome) -> Op[None]:
        if isinstance(step, Challenge):
            self.send(pop3.AuthChallenge(data=step.data))
            return
        self.exchange = None
        if step.ok and step.data:
            # RFC 5034 section 4: success data goes in a "+" continuation; the client
            # answers with an empty line, then the +OK.
            self.success = step
            self.send(pop3.AuthChallenge(data=step.data))
            return
        yield from self.finish(step)

    def finish(self, outcome: AuthOutcome) -> Op[None]:
        """Answer a login: open and lock the maildrop, or refuse (after the delay)."""
        if not outcome.ok:
            if outcome.delay > 0:
                yield Call(pause, (outcome.delay,))
            self.send(_refusal(outcome))
            return
        user = outcome.username
        release = yield blocking_call(self.mda.lock_maildrop, user)
        if release is None:
            self.send(pop3.Err(code="IN-USE", text="Maildrop already locked"))
            return
        try:
            drop = yield blocking_call(open_maildrop, self.mda, user)
        except Exception:
            release()
            log.exception("cannot open the maildrop of %r", user)
            self.send(pop3.Err(code="SYS/TEMP", text="Cannot open the maildrop"))
            return
        self.release, self.drop = release, drop
        self.conn.open_maildrop(len(drop.messages))
        size = sum(m.size for m in drop.messages)
        self.send(pop3.Ok(text=f"Maildrop has {len(drop.messages)} messages ({size} octets)"))

    def message(self, n: int) -> _Message:
        assert self.drop is not None  # the core checked the state and the number
        return self.drop.messages[n - 1]

    def live(self) -> list[tuple[int, _Message]]:
        assert self.drop is not None
        deleted = self.conn.deleted
        return [(n, m) for n, m in enumerate(self.drop.messages, 1) if n not in deleted]

    def retrieve(self, n: int, top: int | None) -> Op[None]:
        """RETR (``top`` None) or TOP: stream the file, never the whole of it at once."""
        assert self.drop is not None
        message = self.message(n)
        try:
            f: IO[bytes] = yield blocking_call(self.drop.box.open, message.uid)
        except (KeyError, OSError):
            self.send(pop3.Err(code="SYS/PERM", text=f"Message {n} is gone"))
            return
        try:
            text = f"{message.size} octets" if top is None else "Top follows"
            self.send(pop3.Ok(text=text))
            chunks: Iterator[bytes] = (
                iter(lambda: f.read(CHUNK), b"") if top is None else top_chunks(f, top)
            )
            for chunk in chunks:
                self.send(pop3.ResponseData(chunk))
                if len(self.out) >= CHUNK:
                    yield from self.flush()
            self.send(pop3.EndOfResponse())
        finally:
            f.close()

    def quit(self) -> Op[None]:
        """QUIT: in UPDATE remove the DELE'd messages, then +OK (or -ERR [SYS/TEMP])."""
        if self.conn.state is not pop3.UPDATE or self.drop is None:
            self.unlock()
            self.send(pop3.Ok(text="Bye"))
            return
        uids = [self.message(n).uid for n in sorted(self.conn.deleted)]
        try:
            yield blocking_call(remove, self.drop.box, uids)
        except Exception:
            log.exception("removing messages failed")
            self.send(pop3.Err(code="SYS/TEMP", text="Some deleted messages not removed"))
            return
        self.unlock()  # before the +OK: a client that logs in again at once gets in
        self.send(pop3.Ok(text="Bye"))

    def unlock(self) -> None:
        if self.release is not None:
            self.release()
            self.release = None


def _refusal(outcome: AuthOutcome) -> pop3.Err:
    code: dict[str, Any] = {
        "auth": ("AUTH", "Authentication failed"),
        "temporary": ("SYS/TEMP", "Too many failures, try later"),
        "encryption-required": ("AUTH", "TLS required for this login"),
        "aborted": (None, "Authentication cancelled"),
        "unsupported": (None, "Unsupported authentication mechanism"),
        "malformed": ("AUTH", "Malformed authentication exchange"),
    }
    resp, text = code.get(outcome.code, ("AUTH", "Authentication failed"))
    return pop3.Err(code=resp, text=text)


def pop3_flow(mda: MDA, info: TransportInfo) -> Op[None]:
    """One POP3 connection, from the greeting to QUIT (or timeout, or the peer leaving)."""
    return _Session(mda, info).run()
