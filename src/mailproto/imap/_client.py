"""The client side of an IMAP connection: `ClientConnection`.

It follows the contract of the whole core::

    conn.receive_data(data)    # bytes from the server; b"" means it closed
    event = conn.next_event()  # a response, a connection event, NEED_DATA or PAUSED
    data = conn.send(command)  # bytes to write; LocalProtocolError if not allowed now
    data = conn.data_to_send() # bytes released by the server's "+" (literals)

Theory of operation. Every response is framed by a `Fragmentizer` (response literals
up to ``config.max_literal_size`` are accepted whole), parsed by `parse_response` with
the configured quirks, and delivered as an event: untagged responses at any time, tagged
completions once they match a command sent and still outstanding; a completion moves the
state as `_state.next_state` says. The first response must be the greeting: untagged
OK, PREAUTH (already authenticated) or BYE.

A FETCH literal larger than ``config.stream_literals_over`` (a 50 MB message body) is
never held whole: `FetchLiteralStarted` names the item, `FetchLiteralData` events carry
its octets as they arrive, and the `Fetch` response follows with that item's data empty.
Such literals are not bound by ``max_literal_size``: the application decides where the
octets go.

Commands are checked against the state the session will be in once every outstanding
command has succeeded, so a client may pipeline "SELECT" and "FETCH". A command goes
out up to its first synchronizing literal; the rest waits for the server's "+", which
is consumed here (it is not an event) and releases the next part into `data_to_send`.
A tagged NO or BAD in place of the "+" cancels the rest. With LITERAL+ (or LITERAL-
for literals of at most 4096 octets, RFC 7888) literals need no "+".

A message too large to hold goes out streamed: `AppendStarted` (mailbox, flags, date,
size) sends the command up to its literal; once the literal may go (at once with
LITERAL+, else after the "+", delivered as `AppendReady`) each `AppendData` returns its
octets, and `AppendEnded` ends the command line after exactly ``size`` octets.

Three exchanges take the "+" for themselves, and while they run nothing else is sent:
AUTHENTICATE (each "+" is an `AuthChallenge`, answered with `AuthenticateResponse` or
`AuthenticateCancel`; an initial response needs SASL-IR), IDLE (the "+" is
`IdleStarted`, untagged responses follow, `IdleDone` ends it) and STARTTLS (after its
tagged OK `next_event` returns `PAUSED` until `start_tls`, which refuses bytes the
server sent after that OK: they would be plaintext injected before the handshake).
"""

from __future__ import annotations

import base64
import re

import attrs

from .._connection import ConnectionBase
from .._util import NEED_DATA, PAUSED, Event, LocalProtocolError, RemoteProtocolError
from . import _commands as c
from . import _responses as r
from ._command_codec import format_command
from ._events import (
    AppendData,
    AppendEnded,
    AppendReady,
    AppendStarted,
    AuthChallenge,
    AuthenticateCancel,
    AuthenticateResponse,
    ConnectionClosed,
    FetchLiteralData,
    FetchLiteralStarted,
    IdleStarted,
)
from ._fragment import Fragmentizer, LiteralAnnouncement
from ._grammar import Fragment, LiteralFragment, ParseError
from ._response_codec import QUIRKS, parse_response
from ._state import AUTHENTICATED, ERROR, LOGOUT, NOT_AUTHENTICATED, State, allowed_in, next_state

__all__ = ["ClientConfig", "ClientConnection"]

NextEvent = Event | type[NEED_DATA] | type[PAUSED]
# The start of an untagged FETCH response, and the item a literal announcement ends.
_FETCH_HEAD = re.compile(rb"\* ([0-9]{1,10}) FETCH \(", re.IGNORECASE)
_ITEM_LITERAL = re.compile(rb"([A-Za-z0-9.]+(?:\[[^\]\r\n]*\])?(?:<[0-9]+>)?) (~?)\{[0-9]+\}\r\n\Z")

# RFC 7888 section 4: LITERAL- allows non-synchronizing literals up to 4096 octets.
_LITERAL_MINUS_MAX = 4096


def _check_quirks(instance: object, attribute: object, value: frozenset[str]) -> None:
    unknown = value - QUIRKS
    if unknown:
        raise LocalProtocolError(f"unknown quirks: {sorted(unknown)}")


@attrs.frozen(slots=True, kw_only=True)
class ClientConfig:
    """Limits and tolerances of a client connection.

    ``max_literal_size``: the largest literal a response may carry (a FETCH body);
    ``max_line_length``: the longest line of a response (a SEARCH result);
    ``max_response_size``: a whole response, literals included. ``quirks`` are passed
    to `parse_response` (see `QUIRKS`). FETCH literals larger than
    ``stream_literals_over`` are streamed (`FetchLiteralStarted`), in pieces of at most
    ``literal_chunk_size`` octets.
    """

    max_literal_size: int = 64 * 1024 * 1024
    max_line_length: int = 1024 * 1024
    max_response_size: int = 80 * 1024 * 1024
    quirks: frozenset[str] = attrs.field(default=frozenset(), validator=_check_quirks)
    stream_literals_over: int = 1024 * 1024
    literal_chunk_size: int = attrs.field(default=64 * 1024, validator=attrs.validators.ge(1))


class ClientConnection(ConnectionBase[Event]):
    """The client side of an IMAP session (RFC 9051, RFC 3501)."""

    def __init__(self, config: ClientConfig | None = None) -> None:
        self.config = config or ClientConfig()
        super().__init__()
        self._fz = Fragmentizer(self.config.max_response_size, self.config.max_line_length)
        self._state: State = NOT_AUTHENTICATED
        self._greeted = False
        self._closed = False
        self._capabilities: frozenset[str] = frozenset()
        # Capabilities arrived since the last LOGIN / AUTHENTICATE was sent (Gmail sends
        # the new ones untagged before the tagged OK): they are kept at its success.
        self._caps_fresh = False
        self._enabled: frozenset[str] = frozenset()
        # Commands sent and not yet completed, by tag, oldest first.
        self._pending: dict[str, c.Command] = {}
        # The rest of a command waiting for a "+" before its synchronizing literal.
        self._held: list[Fragment] = []
        self._held_tag: str | None = None
        self._outgoing = bytearray()
        # The tag of an AUTHENTICATE, IDLE or STARTTLS in progress.
        self._auth_tag: str | None = None
        self._auth_owed = False  # a challenge came; the client owes its answer
        self._idle_tag: str | None = None
        self._idling = False  # the "+" came: IdleDone may be sent
        self._idle_done = False  # IdleDone was sent
        self._starttls_tag: str | None = None
        self._tls_pending = False
        # A streamed APPEND: its tag, the octets still owed, whether they may go now.
        self._append_tag: str | None = None
        self._append_left = 0
        self._append_ready = False
        # A FETCH response with a streamed literal: what was framed of it so far (each
        # streamed literal replaced by an empty one), and its sequence number.
        self._streamed: bytearray | None = None
        self._streamed_seq = 0

    # -- properties ---------------------------------------------------------------------

    @property
    def state(self) -> State:
        """NOT_AUTHENTICATED, AUTHENTICATED, SELECTED, LOGOUT, or ERROR."""
        return ERROR if self._error_state else self._state

    @property
    def capabilities(self) -> frozenset[str]:
        """The server's capabilities (upper case) as last announced; empty when unknown.

        Forgotten when STARTTLS begins, and when authentication succeeds unless new
        ones came with it (untagged, or as a code of the tagged OK): they may change
        then (RFC 9051 6.2.1, 6.2.2).
        """
        return self._capabilities

    @property
    def enabled(self) -> frozenset[str]:
        """What the server reported ENABLED (upper case)."""
        return self._enabled

    @property
    def pending(self) -> tuple[c.Command, ...]:
        """Commands sent and still waiting for their tagged completion, oldest first."""
        return tuple(self._pending.values())

    @property
    def utf8(self) -> bool:
        """UTF-8 mode: IMAP4rev2 or UTF8=ACCEPT was enabled (RFC 9051, RFC 6855)."""
        return bool(self._enabled & {"IMAP4REV2", "UTF8=ACCEPT"})

    def data_to_send(self) -> bytes:
        """Bytes the server's "+" continuations released (the rest of a command)."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    # -- receiving ----------------------------------------------------------------------

    def _next_event(self) -> NextEvent:
        if self._closed:
            return ConnectionClosed()
        if self._tls_pending:
            return PAUSED
        while True:
            if self._streamed is not None and self._fz.literal_remaining:
                chunk = self._fz.take_literal_chunk(self._buf, self.config.literal_chunk_size)
                if chunk is not None:
                    return FetchLiteralData(data=chunk)
                if self._eof:
                    raise LocalProtocolError("the server closed in the middle of a response")
                return NEED_DATA
            message = self._frame()
            if isinstance(message, Event):
                return message
            if message is None:
                if self._eof:
                    if self._fz.mid_message or self._buf:
                        raise LocalProtocolError("the server closed in the middle of a response")
                    self._closed = True
                    return ConnectionClosed()
                return NEED_DATA
            try:
                response = parse_response(message, utf8=self.utf8, quirks=self.config.quirks)
            except ParseError as exc:
                raise LocalProtocolError(f"malformed response: {exc}") from None
            event = self._received(response)
            if event is not None:
                return event

    def _frame(self) -> bytes | Event | None:
        while True:
            item = self._fz.next_message(self._buf)
            if item is None:
                return None
            if isinstance(item, bytes):
                if self._streamed is not None:
                    item = bytes(self._streamed + item)
                    self._streamed = None
                return item
            if not isinstance(item, LiteralAnnouncement):
                raise LocalProtocolError(f"response over the {item.reason} limit")
            if item.size > self.config.stream_literals_over:
                started = self._stream(item.size)
                if started is not None:
                    return started
            if item.size > self.config.max_literal_size:
                raise LocalProtocolError(f"response literal of {item.size} octets is too big")
            self._fz.accept(self._buf)

    def _stream(self, size: int) -> FetchLiteralStarted | None:
        """Stream the literal just announced, if it is a FETCH item's."""
        if self._streamed is None:
            head = _FETCH_HEAD.match(self._fz.peek_message(self._buf))
            if head is None or not self._greeted:
                return None
            self._streamed_seq = int(head.group(1))
        m = _ITEM_LITERAL.search(self._fz.peek_message(self._buf))
        if m is None:
            return None
        prefix = self._fz.stream_literal(self._buf)
        # The rest of the response is framed on its own: keep what came so far, with an
        # empty literal in place of this one, to parse the whole response at its end.
        if self._streamed is None:
            self._streamed = bytearray()
        self._streamed += prefix[: m.end(1) + 1] + m.group(2) + b"{0}\r\n"
        return FetchLiteralStarted(seq=self._streamed_seq, item=m.group(1), size=size)

    def _received(self, response: r.Response) -> Event | None:
        if not self._greeted:
            return self._greeting(response)
        if isinstance(response, r.Continuation):
            return self._continuation(response)
        if isinstance(response, r.Tagged):
            self._completed(response)
            return response
        if isinstance(response, r.Untagged):
            if response.status == "PREAUTH":
                raise LocalProtocolError("PREAUTH is only a greeting")
            if response.status == "BYE":
                self._state = LOGOUT
            self._note_code(response.code)
        elif isinstance(response, r.Capability):
            self._set_capabilities(response.capabilities)
        elif isinstance(response, r.Enabled):
            self._enabled |= {cap.upper() for cap in response.capabilities}
        return response

    def _greeting(self, response: r.Response) -> Event:
        if not isinstance(response, r.Untagged) or response.status not in ("OK", "PREAUTH", "BYE"):
            raise LocalProtocolError("the greeting is an untagged OK, PREAUTH or BYE")
        self._greeted = True
        if response.status == "PREAUTH":
            self._state = AUTHENTICATED
        elif response.status == "BYE":
            self._state = LOGOUT
        self._note_code(response.code)
        return response

    def _note_code(self, code: r.Code | None) -> None:
        if isinstance(code, r.CapabilityCode):
            self._set_capabilities(code.capabilities)

    def _set_capabilities(self, capabilities: tuple[str, ...]) -> None:
        self._capabilities = frozenset(cap.upper() for cap in capabilities)
        self._caps_fresh = True

    def _continuation(self, response: r.Continuation) -> Event | None:
        if self._append_tag is not None and not self._append_ready:
            self._append_ready = True
            return AppendReady()
        if self._held:
            self._outgoing += self._release(self._held, go=True)
            return None
        if self._auth_tag is not None and not self._auth_owed:
            try:
                data = response.data()
            except ValueError:
                raise LocalProtocolError("AUTHENTICATE challenge is not base64") from None
            self._auth_owed = True
            return AuthChallenge(data=data)
        if self._idle_tag is not None and not self._idling:
            self._idling = True
            return IdleStarted()
        raise LocalProtocolError("unexpected continuation request")

    def _completed(self, response: r.Tagged) -> None:
        command = self._pending.pop(response.tag, None)
        if command is None:
            raise LocalProtocolError(f"tagged response for no outstanding command: {response.tag}")
        ok = response.status == "OK"
        if response.tag == self._held_tag:
            # NO or BAD in place of the "+": the rest of the command is not sent.
            self._held = []
            self._held_tag = None
        if response.tag == self._append_tag:
            # NO or BAD in place of the "+" (or after the message): the APPEND is over.
            self._append_tag = None
            self._append_left = 0
            self._append_ready = False
        if response.tag == self._auth_tag:
            self._auth_tag = None
            self._auth_owed = False
        elif response.tag == self._idle_tag:
            self._idle_tag = None
            self._idling = self._idle_done = False
        elif response.tag == self._starttls_tag:
            self._starttls_tag = None
            self._tls_pending = ok
        if isinstance(command, c.Login | c.Authenticate) and ok and not self._caps_fresh:
            self._capabilities = frozenset()
        self._state = next_state(command, ok, self._state)
        self._note_code(response.code)

    # -- sending ------------------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        """Bytes for a command, an `IdleDone`, or an answer to an `AuthChallenge`.

        A command with a synchronizing literal comes back up to that literal; the rest
        comes from `data_to_send` once the server's "+" arrived.

        Raises:
            LocalProtocolError: not allowed now (state, tag in use, an exchange in
                progress, a capability the server did not announce).
        """
        if self._error_state:
            raise LocalProtocolError("can't send after a protocol error")
        if not self._greeted:
            raise LocalProtocolError("wait for the server's greeting")
        if self._tls_pending:
            raise LocalProtocolError("call start_tls() first")
        if isinstance(event, c.IdleDone):
            if not self._idling or self._idle_done:
                raise LocalProtocolError("IdleDone only while idling")
            self._idle_done = True
            return b"DONE\r\n"
        if isinstance(event, AuthenticateResponse | AuthenticateCancel):
            if not self._auth_owed:
                raise LocalProtocolError("no AUTHENTICATE challenge to answer")
            self._auth_owed = False
            if isinstance(event, AuthenticateCancel):
                return b"*\r\n"
            return base64.b64encode(event.data) + b"\r\n"
        if isinstance(event, AppendStarted | AppendData | AppendEnded):
            return self._send_append(event)
        if not isinstance(event, c.Command):
            raise LocalProtocolError(f"a client does not send {type(event).__name__}")
        self._check(event)
        fragments = self._format(event)
        self._pending[event.tag] = event
        if isinstance(event, c.Login | c.Authenticate):
            self._caps_fresh = False
        if isinstance(event, c.Authenticate):
            self._auth_tag = event.tag
        elif isinstance(event, c.Idle):
            self._idle_tag = event.tag
        elif isinstance(event, c.StartTLS):
            self._starttls_tag = event.tag
        data = self._release(fragments, go=False)
        if self._held:
            self._held_tag = event.tag
        return data

    def _send_append(self, event: AppendStarted | AppendData | AppendEnded) -> bytes:
        if isinstance(event, AppendStarted):
            command = c.Append(
                tag=event.tag,
                mailbox=event.mailbox,
                messages=(
                    c.AppendMessage(
                        message=b"",
                        flags=event.flags,
                        internal_date=event.date,
                        binary=event.binary,
                    ),
                ),
            )
            self._check(command)
            caps = self._capabilities
            nonsync = "LITERAL+" in caps or ("LITERAL-" in caps and event.size <= 4096)
            # The command with an empty literal, its announcement given the real size.
            head = format_command(command, utf8=self.utf8)[0]
            assert isinstance(head, bytes)
            head = head[: head.rindex(b"{")].rstrip(b"~")
            head += b"%s{%d%s}\r\n" % (
                b"~" if event.binary else b"",
                event.size,
                b"+" if nonsync else b"",
            )
            self._pending[event.tag] = command
            self._append_tag = event.tag
            self._append_left = event.size
            self._append_ready = nonsync
            return head
        if self._append_tag is None:
            raise LocalProtocolError(f"{type(event).__name__} without AppendStarted")
        if not self._append_ready:
            raise LocalProtocolError("wait for AppendReady (the server's '+')")
        if isinstance(event, AppendData):
            if len(event.data) > self._append_left:
                raise LocalProtocolError("more octets than the APPEND announced")
            self._append_left -= len(event.data)
            return event.data
        if self._append_left:
            raise LocalProtocolError(f"{self._append_left} octets of the APPEND are missing")
        self._append_tag = None  # the command is complete; its tagged reply is pending
        self._append_ready = False
        return b"\r\n"

    def _check(self, command: c.Command) -> None:
        busy = (
            self._auth_tag
            or self._idle_tag
            or self._starttls_tag
            or self._held_tag
            or self._append_tag
        )
        if busy is not None:
            raise LocalProtocolError(f"command {busy} must complete first")
        if command.tag in self._pending:
            raise LocalProtocolError(f"tag {command.tag} is already in use")
        state = self._state
        for pending in self._pending.values():
            state = next_state(pending, True, state)
        if not allowed_in(command, state):
            raise LocalProtocolError(f"{type(command).__name__} is not allowed in {state!r}")
        caps = self._capabilities
        if isinstance(command, c.Authenticate):
            if command.initial_response is not None and "SASL-IR" not in caps:
                raise LocalProtocolError("an initial response needs SASL-IR")
        elif isinstance(command, c.Login) and "LOGINDISABLED" in caps:
            raise LocalProtocolError("the server announced LOGINDISABLED")

    def _format(self, command: c.Command) -> list[Fragment]:
        caps = self._capabilities
        utf8 = self.utf8
        if "LITERAL+" in caps:
            return format_command(command, literal_plus=True, utf8=utf8)
        if "LITERAL-" in caps:
            fragments = format_command(command, literal_plus=True, utf8=utf8)
            if all(
                len(f.data) <= _LITERAL_MINUS_MAX
                for f in fragments
                if isinstance(f, LiteralFragment)
            ):
                return fragments
        return format_command(command, utf8=utf8)

    def _release(self, fragments: list[Fragment], *, go: bool) -> bytes:
        # The fragments up to the next synchronizing literal; ``go``: the first one may
        # go (its "+" came). What stays waits in self._held.
        out = bytearray()
        for i, fragment in enumerate(fragments):
            if isinstance(fragment, LiteralFragment):
                if fragment.mode != "nonsync" and not (go and i == 0):
                    self._held = fragments[i:]
                    return bytes(out)
                out += fragment.data
            else:
                out += fragment
        self._held = []
        self._held_tag = None
        return bytes(out)

    def start_tls(self) -> None:
        """Call after the tagged OK to STARTTLS, before the TLS handshake.

        Raises `RemoteProtocolError` if the server sent anything after that OK (a
        response injection attempt); otherwise the session goes on over TLS, with the
        capabilities forgotten (ask for them again).
        """
        if not self._tls_pending:
            raise LocalProtocolError("start_tls() is only valid after an OK to STARTTLS")
        if self._buf:
            self._error_state = True
            raise RemoteProtocolError("data from the server after its OK to STARTTLS")
        self._tls_pending = False
        self._capabilities = frozenset()
