"""RFC example sessions in ``tests/vectors/``, replayed through both roles.

Format of a vector (``smtp-*.txt`` and ``lmtp-*.txt``):

- ``C: text`` is one line the client sends (``C:`` alone is an empty line), ``S: text``
  one line the server sends; consecutive ``S:`` lines ``250-...``/``250 ...`` make one
  multi-line reply. Lines go on the wire with CRLF added.
- After a ``354`` reply, ``C:`` lines are the message as it travels (dot-stuffed) up to
  the ``C: .`` line. After ``C: BDAT n``, ``C:`` lines are the chunk's octets as they are,
  no line ending added, until n octets: ``<CR>`` and ``<LF>`` stand for the two bytes
  (in message lines too) and ``{N octets}`` for N octets of binary data.
- After a ``334`` reply the next ``C:`` line is the SASL response.
- ``# ...`` is a comment. Directives: ``!lmtp`` (an LMTP session), ``!server key=value``
  (a `ServerConfig` field), ``!server-only`` (bytes our client never sends, such as a bare
  LF in a message: it repairs them), ``!tls`` (both sides call ``start_tls()`` here),
  ``!rejected CODE ENHANCED`` (the server core itself refuses the command or message just
  before, with a `CommandRejected` or `MessageRejected` suggesting that reply; the
  application then sends the ``S:`` reply that follows, whatever its wording).

Server role: the ``C:`` bytes are fed (whole, and one byte at a time), the events are
checked against the ones this module derives from the ``C:`` lines with its own small
parser, and the replies, built from the ``S:`` lines, must serialise to exactly those
bytes. Client role: the same events are sent and must serialise to exactly the ``C:``
bytes; the ``S:`` bytes are fed and must give back the same `Reply` events.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import pytest
from smtp_helpers import pending_of, state_of

from mailproto import NEED_DATA, PAUSED
from mailproto.sasl import PlainServer, Success, VerifyPassword
from mailproto.smtp import (
    CLOSED,
    GREETED,
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthResponse,
    Bdat,
    BodyType,
    ClientConnection,
    CommandRejected,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfChunk,
    EndOfMessage,
    Expn,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    MessageData,
    MessageRejected,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    ServerConfig,
    ServerConnection,
    SMTPEvent,
    StartTLS,
    Vrfy,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
FILES = sorted(p for p in VECTORS.glob("*.txt") if p.name.startswith(("smtp-", "lmtp-")))

# What the server is expected to produce, in a comparable form: plain events, or
# ("CommandRejected" | "MessageRejected", code, enhanced, command line).
Expected = object


@dataclass(frozen=True)
class ClientItem:
    """What the client sends at one point: (event, the bytes it must give) pairs."""

    sends: tuple[tuple[SMTPEvent, bytes], ...]
    expected: tuple[Expected, ...]  # the server's events for these bytes

    @property
    def wire(self) -> bytes:
        return b"".join(data for _, data in self.sends)


@dataclass(frozen=True)
class ServerItem:
    wire: bytes
    event: Reply | AuthChallenge


@dataclass(frozen=True)
class TlsItem:
    pass


Item = ClientItem | ServerItem | TlsItem


@dataclass
class Transcript:
    name: str
    lmtp: bool = False
    server_only: bool = False
    config: dict[str, int | bool] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)

    def server_config(self) -> ServerConfig:
        return ServerConfig(**self.config)  # type: ignore[arg-type]


# --- the vector parser (independent of mailproto's own grammar) ------------------------

_ENHANCED = re.compile(r"([245]\.[0-9]{1,3}\.[0-9]{1,3})(?: |$)")


def _octets(text: str) -> bytes:
    m = re.fullmatch(r"\{(\d+) octets\}", text)
    if m is not None:
        return bytes(i % 256 for i in range(int(m.group(1))))
    return text.replace("<CR>", "\r").replace("<LF>", "\n").encode("utf-8")


def _reply(lines: list[str]) -> ServerItem:
    code = int(lines[0][:3])
    texts = [line[4:] for line in lines]
    wire = "".join(line + "\r\n" for line in lines).encode("utf-8")
    if code == 334:
        return ServerItem(wire, AuthChallenge(data=base64.b64decode(texts[0])))
    m = _ENHANCED.match(texts[0])
    enhanced = None
    if m is not None and m.group(1)[0] == str(code)[0]:
        enh = m.group(1)
        if all(_ENHANCED.match(t) and t.startswith(enh) for t in texts):
            enhanced = enh
            texts = [t[len(enh) + 1 :] for t in texts]
    return ServerItem(wire, Reply(code=code, lines=tuple(texts), enhanced=enhanced))


_BODIES: dict[str, BodyType] = {"7BIT": "7BIT", "8BITMIME": "8BITMIME", "BINARYMIME": "BINARYMIME"}


def _mail_from(arg: str) -> MailFrom:
    m = re.fullmatch(r"FROM:<([^>]*)>((?: \S+)*)", arg, re.IGNORECASE)
    assert m is not None, arg
    size: int | None = None
    body: BodyType | None = None
    smtputf8 = False
    extra: list[tuple[str, str | None]] = []
    for param in m.group(2).split():
        key, eq, value = param.partition("=")
        if key.upper() == "SIZE":
            size = int(value)
        elif key.upper() == "BODY":
            body = _BODIES[value]
        elif key.upper() == "SMTPUTF8":
            smtputf8 = True
        else:
            extra.append((key, value if eq else None))
    return MailFrom(sender=m.group(1), size=size, body=body, smtputf8=smtputf8, extra=extra)


def _command(text: str) -> SMTPEvent:
    verb, _, arg = text.partition(" ")
    verb = verb.upper()
    if verb in ("EHLO", "HELO", "LHLO"):
        return {"EHLO": Ehlo, "HELO": Helo, "LHLO": Lhlo}[verb](domain=arg)
    if verb == "MAIL":
        return _mail_from(arg)
    if verb == "RCPT":
        m = re.fullmatch(r"TO:<([^>]*)>", arg, re.IGNORECASE)
        assert m is not None, arg
        return RcptTo(recipient=m.group(1))
    if verb == "BDAT":
        size, *last = arg.split()
        return Bdat(size=int(size), last=last == ["LAST"])
    if verb == "AUTH":
        mechanism, *initial = arg.split()
        ir = None
        if initial:
            ir = b"" if initial == ["="] else base64.b64decode(initial[0])
        return Auth(mechanism=mechanism, initial_response=ir)
    if verb == "VRFY":
        return Vrfy(argument=arg)
    if verb == "EXPN":
        return Expn(argument=arg)
    if verb in ("NOOP", "HELP"):
        return Noop(argument=arg) if verb == "NOOP" else Help(argument=arg)
    simple: dict[str, SMTPEvent] = {
        "DATA": Data(),
        "RSET": Rset(),
        "QUIT": Quit(),
        "STARTTLS": StartTLS(),
    }
    return simple[verb]


def _bdat_item(line: bytes, bdat: Bdat, data: bytes) -> ClientItem:
    sends: list[tuple[SMTPEvent, bytes]] = [(bdat, line)]
    expected: list[Expected] = [bdat]
    if data:
        sends.append((MessageData(data), data))
        expected.append(MessageData(data))
    expected.append(EndOfMessage() if bdat.last else EndOfChunk())
    return ClientItem(tuple(sends), tuple(expected))


def parse_transcript(path: Path) -> Transcript:
    transcript = Transcript(path.stem)
    items = transcript.items
    reply: list[str] = []
    body: list[str] | None = None
    auth_next = False
    bdat: tuple[bytes, Bdat, bytes] | None = None
    for raw in path.read_text("utf-8").splitlines():
        if raw.startswith("#") or not raw.strip():
            continue
        if raw.startswith("!"):
            directive, _, arg = raw[1:].partition(" ")
            if directive == "lmtp":
                transcript.lmtp = True
            elif directive == "server-only":
                transcript.server_only = True
            elif directive == "server":
                key, _, value = arg.partition("=")
                transcript.config[key] = (
                    value == "true" if value in ("true", "false") else int(value)
                )
            elif directive == "tls":
                items.append(TlsItem())
            else:
                assert directive == "rejected", raw
                want_code, enhanced = arg.split()
                last = items[-1]
                assert isinstance(last, ClientItem)
                rejected_line = last.sends[0][1].rstrip(b"\r\n")
                if isinstance(last.sends[0][0], AuthResponse | AuthCancel):
                    rejected_line = b""  # a SASL response is never repeated in a rejection
                kind = "MessageRejected" if isinstance(last.sends[-1][0], EndOfMessage) else ""
                rejected: Expected = (
                    (kind, int(want_code), enhanced, b"")
                    if kind
                    else ("CommandRejected", int(want_code), enhanced, rejected_line)
                )
                items[-1] = replace(last, expected=(rejected,))
            continue
        role, text = raw[:2], raw[3:]
        assert role in ("C:", "S:"), raw
        assert raw[2:3] in ("", " "), raw
        if role == "S:":
            reply.append(text)
            if len(text) == 3 or text[3] == " ":
                item = _reply(reply)
                reply = []
                items.append(item)
                code = int(text[:3])
                body = [] if code == 354 else None
                auth_next = code == 334
            continue
        if bdat is not None:
            line, chunk_command, data = bdat
            data += _octets(text)
            assert len(data) <= chunk_command.size, f"{path.name}: chunk longer than announced"
            bdat = (line, chunk_command, data)
            if len(data) == chunk_command.size:
                items.append(_bdat_item(line, chunk_command, data))
                bdat = None
        elif body is not None:
            if text != ".":
                body.append(text)
                continue
            wire = b"".join(_octets(t) + b"\r\n" for t in body) + b".\r\n"
            content = b"".join(_octets(t[1:] if t[:1] == "." else t) + b"\r\n" for t in body)
            sends: list[tuple[SMTPEvent, bytes]] = []
            expected: list[Expected] = []
            if content:
                sends.append((MessageData(content), wire[:-3]))
                expected.append(MessageData(content))
            sends.append((EndOfMessage(), b".\r\n"))
            expected.append(EndOfMessage())
            items.append(ClientItem(tuple(sends), tuple(expected)))
            body = None
        elif auth_next:
            auth_next = False
            event: SMTPEvent = (
                AuthCancel() if text == "*" else AuthResponse(data=base64.b64decode(text))
            )
            items.append(ClientItem(((event, text.encode() + b"\r\n"),), (event,)))
        else:
            command = _command(text)
            line = text.encode("utf-8") + b"\r\n"
            if isinstance(command, Bdat) and command.size:
                bdat = (line, command, b"")
            elif isinstance(command, Bdat):
                items.append(_bdat_item(line, command, b""))
            else:
                items.append(ClientItem(((command, line),), (command,)))
    assert not reply, f"{path.name}: unfinished reply"
    assert bdat is None, f"{path.name}: unfinished chunk"
    assert body is None, f"{path.name}: unfinished message"
    return transcript


TRANSCRIPTS = {p.stem: parse_transcript(p) for p in FILES}


# --- replay ----------------------------------------------------------------------------


def normalise(events: list[SMTPEvent]) -> list[Expected]:
    """Merge MessageData runs, summarise rejections, drop the data of a refused body."""
    out: list[Expected] = []
    for event in events:
        if isinstance(event, MessageData) and out and isinstance(out[-1], MessageData):
            out[-1] = MessageData(out[-1].data + event.data)
        elif isinstance(event, CommandRejected):
            reply = event.reply
            out.append(("CommandRejected", reply.code, reply.enhanced, event.command))
        elif isinstance(event, MessageRejected):
            if out and isinstance(out[-1], MessageData):
                out.pop()
            out.append(("MessageRejected", event.reply.code, event.reply.enhanced, b""))
        else:
            out.append(event)
    return out


def _pieces(data: bytes, mode: Literal["whole", "bytewise"]) -> Iterator[bytes]:
    if mode == "whole":
        yield data
        return
    step = 1 if len(data) < 10_000 else 997
    for i in range(0, len(data), step):
        yield data[i : i + step]


def drain(server: ServerConnection, events: list[SMTPEvent]) -> object:
    while True:
        event = server.next_event()
        if event is NEED_DATA or event is PAUSED:
            return event
        assert isinstance(event, SMTPEvent)
        events.append(event)


def replay_server(transcript: Transcript, mode: Literal["whole", "bytewise"]) -> ServerConnection:
    server = ServerConnection(transcript.server_config(), lmtp=transcript.lmtp)
    events: list[SMTPEvent] = []
    expected: list[Expected] = []
    for item in transcript.items:
        if isinstance(item, ClientItem):
            expected.extend(item.expected)
            for piece in _pieces(item.wire, mode):
                server.receive_data(piece)
                drain(server, events)
        elif isinstance(item, ServerItem):
            assert drain(server, events) is PAUSED
            assert server.replies_owed >= 1
            assert server.send(item.event) == item.wire
        else:
            assert server.replies_owed == 0
            server.start_tls()
            assert state_of(server) is GREETED
            assert server.extensions is None
    if state_of(server) is CLOSED:
        assert server.next_event() == ConnectionClosed()
    else:
        assert drain(server, events) is NEED_DATA
    assert normalise(events) == expected
    return server


def replay_client(transcript: Transcript, mode: Literal["whole", "bytewise"]) -> ClientConnection:
    client = ClientConnection(lmtp=transcript.lmtp)
    for item in transcript.items:
        if isinstance(item, ClientItem):
            for event, data in item.sends:
                assert client.send(event) == data
        elif isinstance(item, ServerItem):
            pieces = list(_pieces(item.wire, mode))
            for piece in pieces[:-1]:
                client.receive_data(piece)
                assert client.next_event() is NEED_DATA
            client.receive_data(pieces[-1])
            assert client.next_event() == item.event
        else:
            assert client.next_event() is PAUSED
            client.start_tls()
            assert state_of(client) is GREETED
            assert client.extensions is None
    assert client.next_event() is NEED_DATA
    client.receive_data(b"")
    assert client.next_event() == ConnectionClosed()
    assert state_of(client) is CLOSED
    return client


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
def test_server_replays_transcript(name: str, mode: Literal["whole", "bytewise"]) -> None:
    replay_server(TRANSCRIPTS[name], mode)


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
@pytest.mark.parametrize("name", sorted(n for n, t in TRANSCRIPTS.items() if not t.server_only))
def test_client_replays_transcript(name: str, mode: Literal["whole", "bytewise"]) -> None:
    client = replay_client(TRANSCRIPTS[name], mode)
    assert pending_of(client) == ()


def test_vectors_are_there() -> None:
    names = set(TRANSCRIPTS)
    for required in (
        "smtp-rfc5321-d1-typical",
        "smtp-rfc5321-d2-aborted",
        "smtp-rfc5321-d3-relay-step1",
        "smtp-rfc5321-d3-relay-step2",
        "smtp-rfc5321-d4-verify",
        "lmtp-rfc2033-4.2",
        "smtp-rfc3030-4.1-chunking",
        "smtp-rfc3030-4.2-binarymime-pipelining",
        "smtp-rfc4954-plain-tls",
        "smtp-rfc2920-pipelined",
    ):
        assert required in names


# --- what the vectors say beyond their bytes -------------------------------------------


def test_d1_body_is_unstuffed_and_green_is_not_a_recipient() -> None:
    items = TRANSCRIPTS["smtp-rfc5321-d1-typical"].items
    bodies = [
        e
        for i in items
        if isinstance(i, ClientItem)
        for e in i.expected
        if isinstance(e, MessageData)
    ]
    assert bodies == [MessageData(b"Blah blah blah...\r\n..etc. etc. etc.\r\n")]
    client = replay_client(TRANSCRIPTS["smtp-rfc5321-d1-typical"], "whole")
    assert client.extensions is not None
    assert sorted(client.extensions.keywords) == ["8BITMIME", "DSN", "HELP", "SIZE"]


def test_lmtp_example_ends_with_one_reply_per_accepted_recipient() -> None:
    transcript = TRANSCRIPTS["lmtp-rfc2033-4.2"]
    server = ServerConnection(lmtp=True)
    events: list[SMTPEvent] = []
    owed_after_body: list[int] = []
    for item in transcript.items:
        if isinstance(item, ClientItem):
            server.receive_data(item.wire)
        elif isinstance(item, ServerItem):
            drain(server, events)
            if events and events[-1] == EndOfMessage():
                owed_after_body.append(server.replies_owed)
            assert server.send(item.event) == item.wire
    # Two recipients were accepted (pat, green): two replies are owed, then one.
    assert owed_after_body[:2] == [2, 1]


def test_plain_vector_verifies_with_real_sasl() -> None:
    server = replay_server(TRANSCRIPTS["smtp-rfc4954-plain-tls"], "whole")
    assert server.session.authenticated
    auth = next(
        e
        for i in TRANSCRIPTS["smtp-rfc4954-plain-tls"].items
        if isinstance(i, ClientItem)
        for e, _ in i.sends
        if isinstance(e, Auth)
    )
    mech = PlainServer()
    step = mech.start(auth.initial_response)
    assert step == VerifyPassword(username="test", authzid="test", password="1234")
    assert isinstance(mech.verified(True), Success)


def test_binarymime_vector_offers_no_8bitmime() -> None:
    # The RFC 3030 example is the reason BODY=BINARYMIME may not depend on 8BITMIME.
    client = replay_client(TRANSCRIPTS["smtp-rfc3030-4.2-binarymime-pipelining"], "whole")
    assert client.extensions is not None
    assert "BINARYMIME" in client.extensions
    assert "8BITMIME" not in client.extensions
