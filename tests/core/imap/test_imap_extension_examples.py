"""The example exchanges of the IMAP extension RFCs parse, write back, and replay.

The "C:" and "S:" lines of each extension RFC the core supports were copied into
tests/vectors/imap-ext-rfcNNNN.txt, one file per RFC (the first file, for RFC 7888,
describes the format; each header says which sections the lines come from and how they
were transcribed). For every message:

1. a client message goes through ``parse_command`` (a server one through
   ``parse_response``; "DONE" through ``parse_idle_done``; the base64 lines of a SASL
   exchange are decoded and encoded again) and is written back by ``format_command`` /
   ``format_response`` to the RFC's very octets, since a parsed value keeps its spelling
   (``literal_plus=True`` where the RFC sends ``{n+}``);
2. written with ``as_parsed=False`` (the canonical spelling) it parses back to an equal
   value;
3. the lines the RFC's own ABNF does not allow (typos, "..." elisions) are in `INVALID`
   with the clause they break, and must be rejected; the lines of extensions the core
   does not implement are in `OTHER_EXTENSION`, and must be rejected too.

The lines between "#> session" and "#> end" of a vector file are also replayed as one
session, both roles at once: a `ClientConnection` sends each client message (it must
produce the RFC's octets) to a `ServerConnection` (which must turn them into the same
command events), and the server sends each server message (its octets again) to the
client (which must turn it back into the same response). A literal's "+" goes from the
server's ``data_to_send`` to the client. Lines in `INVALID` (elided responses) are
skipped by the replay.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import NamedTuple

import pytest

from mailproto import NEED_DATA, PAUSED, Event
from mailproto.imap import (
    AppendData,
    AppendEnded,
    AppendStarted,
    ClientConnection,
    IdleStarted,
    ParseError,
    ServerConfig,
    ServerConnection,
    dump,
    format_command,
    format_idle_done,
    format_response,
    parse_command,
    parse_idle_done,
    parse_response,
)
from mailproto.imap import commands as c
from mailproto.imap import responses as r

VECTORS = Path(__file__).parent.parent.parent / "vectors"

# The RFCs whose examples are here (RFC 2177's IDLE example is also replayed by
# test_imap_server.py from imap-session-rfc2177-idle.txt).
RFCS = (
    "2177", "2342", "2971", "3516", "3691", "4315", "4731", "4959", "5161", "5256",
    "5258", "5819", "6154", "6851", "7162", "7888", "7889", "8438", "9208",
)  # fmt: skip

_AUTHENTICATE = re.compile(rb"(\S+) AUTHENTICATE \S+", re.IGNORECASE)


class Message(NamedTuple):
    rfc: str  # "7162"
    line: int  # where the message starts in its vector file
    who: str  # "C" (client) or "S" (server)
    wire: bytes  # the message, CRLF-ended, literals inline
    kind: str  # "command", "response", "done" (ends IDLE) or "sasl" (base64 line)
    rfc_line: bool  # False for the "c: " / "s: " lines added to a session
    session: int | None  # the session block it belongs to, if any


def _load(rfc: str) -> list[Message]:
    messages: list[Message] = []
    session: int | None = None
    sessions = 0
    auth_tag: bytes | None = None  # an AUTHENTICATE without initial response is running
    path = VECTORS / f"imap-ext-rfc{rfc}.txt"
    for number, text in enumerate(path.read_bytes().split(b"\n"), 1):
        if text == b"#> session":
            assert session is None, f"{path.name}:{number}"
            session, sessions = sessions, sessions + 1
            continue
        if text == b"#> end":
            assert session is not None, f"{path.name}:{number}"
            session = None
            continue
        if not text or text.startswith(b"#"):
            continue
        kind, _, rest = text.partition(b" ")
        if kind in (b"C+", b"S+"):
            last = messages[-1]
            assert kind[:1].decode() == last.who, f"{path.name}:{number}"
            assert last.kind != "sasl", f"{path.name}:{number}"
            messages[-1] = last._replace(wire=last.wire + rest + b"\r\n")
            continue
        assert kind in (b"C:", b"S:", b"c:", b"s:"), f"{path.name}:{number}: {text!r}"
        who = kind[:1].decode().upper()
        if who == "S":
            what = "response"
            if auth_tag is not None and rest.startswith(auth_tag + b" "):
                auth_tag = None
        elif auth_tag is not None:
            what = "sasl"  # a client line after the server's "+" of AUTHENTICATE
        else:
            what = "done" if rest.upper() == b"DONE" else "command"
            m = _AUTHENTICATE.fullmatch(rest)
            auth_tag = m.group(1) if m else None
        wire = rest + b"\r\n"
        messages.append(Message(rfc, number, who, wire, what, kind.isupper(), session))
    assert session is None, f"{path.name}: a session is not closed"
    return messages


ALL = {rfc: _load(rfc) for rfc in RFCS}
EXAMPLES = [m for rfc in RFCS for m in ALL[rfc] if m.rfc_line]

# --- lines the RFC's own ABNF does not allow (we reject them) ----------------------------
# Five lines stop right after "]": "* OK [UIDVALIDITY 1]" (2177), "* OK [COPYUID 432432
# 42:69 1202:1229]" (6851), "* OK [HIGHESTMODSEQ 715194045007]", "* OK [HIGHESTMODSEQ
# 12111230047]" and "* OK [CLOSED]" (7162). RFC 3501 wants SP and text after "]"; RFC
# 9051's resp-text (["[" resp-text-code "]" SP] [text]) reads them as bare text. We
# read them, as the RFC 9051 test does, and write them back unchanged. "a107 OK" has
# not even the SP after OK, which both grammars require: rejected.
ELIDED_FETCH = (
    'an elision, not a FETCH response: msg-att = "(" (msg-att-dynamic / msg-att-static) ...'
)
ELIDED_LINE = (
    'an elision: not a response (response-data = "*" SP ...; response-tagged = tag SP ...)'
)
ELIDED_CAPABILITY = (
    'an elision: "[...]" is not a capability (capability = atom; "]" is not an ATOM-CHAR)'
)
TWO_SP_LIST = (
    'two SP before the mailbox: mailbox-list = "(" [mbx-list-flags] ")" SP '
    "(DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox"
)

INVALID: dict[tuple[str, bytes], str] = {
    ("2177", b"* 4 FETCH (...)"): "3: " + ELIDED_FETCH,
    ("2177", b"* 3 FETCH (...)"): "3: " + ELIDED_FETCH,
    ("2342", b'* NAMESPACE (("INBOX." ".")) NIL  NIL'): (
        '5.5: two SP before the last NIL: Namespace_Response = "*" SP "NAMESPACE" SP '
        "Namespace SP Namespace SP Namespace"
    ),
    ("5819", b'* LIST () "."  "INBOX"'): "3: " + TWO_SP_LIST,
    ("5819", b'* LIST (\\Subscribed) "."  "INBOX"'): "3: " + TWO_SP_LIST,
    ("5819", b'A02 LIST (SUBSCRIBED RECURSIVEMATCH)"" % RETURN (STATUS (MESSAGES))'): (
        '3: no SP between the selection options and the reference: list = "LIST" '
        "[SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts] (RFC 5258)"
    ),
    ("6851", b"(more expunges)"): "3.3: " + ELIDED_LINE,
    ("7162", b"a107 OK"): (
        '3.1.3 example 9: nothing after OK: resp-cond-state = ("OK" / "NO" / "BAD") '
        "SP resp-text, and RFC 3501's resp-text needs text"
    ),
    ("7162", b"b107 OK"): (
        '3.1.3 example 9: nothing after OK: resp-cond-state = ("OK" / "NO" / "BAD") '
        "SP resp-text, and RFC 3501's resp-text needs text"
    ),
    ("7162", b"* VANISHED (EARLIER) 1:2,4:5,7:8,10:11,13:14,[...],29668:29669,29671:29996"): (
        '3.2.5.2: an elision inside the UIDs: expunged-resp = "VANISHED" [SP "(EARLIER)"] '
        "SP known-uids, known-uids = sequence-set"
    ),
    ("7162", b"..."): "3.2.5.2: " + ELIDED_LINE,
    ("7889", b'* LIST () "."  "INBOX"'): "3.2: " + TWO_SP_LIST,
    ("9208", b"* CAPABILITY [...] QUOTA QUOTA=RES-STORAGE [...]"): "4.1.1: " + ELIDED_CAPABILITY,
    ("9208", b"* CAPABILITY [...] QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE [...]"): (
        "4.1.2, 4.1.4: " + ELIDED_CAPABILITY
    ),
    ("9208", b"* CAPABILITY [...] QUOTA QUOTASET QUOTA=RES-STORAGE QUOTA=RES-MESSAGE [...]"): (
        "4.1.3: " + ELIDED_CAPABILITY
    ),
}

# --- lines of extensions the core does not implement (rejected as unknown) -----------
METADATA = "RFC 5464 METADATA, not one of the core's extensions (docs/imap.md)"
OTHER_EXTENSION: dict[tuple[str, bytes], str] = {
    ("6154", b't2 GETMETADATA "MyDrafts" /private/specialuse'): METADATA,
    ("6154", b'* METADATA "MyDrafts" (/private/specialuse "\\\\Drafts")'): METADATA,
    ("6154", b't3 SETMETADATA "SavedDrafts" (/private/specialuse "\\\\Drafts")'): METADATA,
    ("6154", b'* METADATA "MyDrafts" (/private/specialuse NIL)'): METADATA,
    ("6154", b't4 SETMETADATA "SentMail" (/private/specialuse NIL)'): METADATA,
    ("7162", b"a SORT RETURN (ALL) (DATE) UTF-8 MODSEQ 1234"): (
        "RFC 5267 ESORT (SORT RETURN), not one of the core's extensions (docs/imap.md)"
    ),
}

# --- valid lines our parser got wrong (fixed; kept empty so a new one shows up) --------
PARSER_BUGS: dict[tuple[str, bytes], str] = {}

# How many example messages each RFC gives (SASL lines and "DONE" included).
COUNTS = {
    "2177": 27, "2342": 51, "2971": 6, "3516": 0, "3691": 2, "4315": 23, "4731": 27,
    "4959": 24, "5161": 12, "5256": 21, "5258": 159, "5819": 12, "6154": 51, "6851": 5,
    "7162": 284, "7888": 4, "7889": 13, "8438": 28, "9208": 37,
}  # fmt: skip


def _key(m: Message) -> tuple[str, bytes]:
    return (m.rfc, m.wire[:-2])


def _parse(m: Message) -> c.Command | r.Response:
    return parse_command(m.wire) if m.who == "C" else parse_response(m.wire)


def _write(m: Message, value: c.Command | r.Response, *, as_parsed: bool = True) -> bytes:
    if isinstance(value, c.Command):
        # {n+} is written only where LITERAL+ is in use, as it was for these lines
        literal_plus = as_parsed and b"+}\r\n" in m.wire
        return dump(format_command(value, literal_plus=literal_plus, as_parsed=as_parsed))
    return dump(format_response(value, as_parsed=as_parsed))


def _param(m: Message) -> object:
    marks = []
    if _key(m) in PARSER_BUGS:
        marks.append(pytest.mark.xfail(strict=True, reason=PARSER_BUGS[_key(m)]))
    return pytest.param(m, id=f"rfc{m.rfc}-line{m.line}", marks=marks)


# --- the vector files ------------------------------------------------------------------


def test_one_file_per_rfc() -> None:
    names = {p.name for p in VECTORS.glob("imap-ext-rfc*.txt")}
    assert names == {f"imap-ext-rfc{rfc}.txt" for rfc in RFCS}


def test_the_counts() -> None:
    assert {rfc: sum(m.rfc_line for m in ALL[rfc]) for rfc in RFCS} == COUNTS
    assert len(EXAMPLES) == sum(COUNTS.values()) == 786
    assert not ALL["3516"]  # RFC 3516 has no example exchange
    assert sum(m.kind == "sasl" for m in EXAMPLES) == 2
    assert sum(m.kind == "done" for m in EXAMPLES) == 2


def test_every_table_line_is_an_rfc_line() -> None:
    keys = {_key(m) for m in EXAMPLES}
    for table in (INVALID, OTHER_EXTENSION, PARSER_BUGS):
        assert set(table) <= keys
    assert not set(INVALID) & set(OTHER_EXTENSION)
    assert not (set(INVALID) | set(OTHER_EXTENSION)) & set(PARSER_BUGS)
    rejected = [m for m in EXAMPLES if _key(m) in INVALID]
    assert len(INVALID) == 15
    assert len(rejected) == 19  # "S: ..." four times, "* LIST () "."  "INBOX"" in two RFCs


# --- every message ---------------------------------------------------------------------


@pytest.mark.parametrize("m", [_param(m) for m in EXAMPLES])
def test_example(m: Message) -> None:
    if m.kind == "done":
        assert parse_idle_done(m.wire) == c.IdleDone()
        assert dump(format_idle_done()) == m.wire
        return
    if m.kind == "sasl":
        # a SASL response: base64 (RFC 4959 section 4), here as the client encodes it
        data = base64.b64decode(m.wire[:-2], validate=True)
        assert base64.b64encode(data) + b"\r\n" == m.wire
        return
    if _key(m) in INVALID or _key(m) in OTHER_EXTENSION:
        with pytest.raises(ParseError):
            _parse(m)
        return
    value = _parse(m)
    assert _write(m, value) == m.wire
    canonical = _write(m, value, as_parsed=False)
    assert _parse(m._replace(wire=canonical)) == value


# --- sessions ----------------------------------------------------------------------------


def _sessions() -> list[object]:
    out: list[object] = []
    for rfc in RFCS:
        numbers = sorted({m.session for m in ALL[rfc] if m.session is not None})
        for n in numbers:
            block = [m for m in ALL[rfc] if m.session == n]
            out.append(pytest.param(block, id=f"rfc{rfc}-session{n + 1}-line{block[0].line}"))
    return out


SESSIONS = _sessions()


def _drain(conn: ServerConnection | ClientConnection) -> list[Event]:
    events: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return events
        assert isinstance(event, Event), event
        events.append(event)


def _client_sends(m: Message, client: ClientConnection, server: ServerConnection) -> None:
    command: c.Command | c.IdleDone = c.IdleDone() if m.kind == "done" else parse_command(m.wire)
    sent = client.send(command)
    server.receive_data(sent)
    events = _drain(server)
    while continuation := server.data_to_send():  # the server's "+" for a literal
        client.receive_data(continuation)
        assert _drain(client) == []  # consumed by the client: it releases the rest
        more = client.data_to_send()
        assert more
        sent += more
        server.receive_data(more)
        events += _drain(server)
    assert sent == m.wire
    if isinstance(command, c.Append):
        [message] = command.messages
        started, *data, ended = events
        assert started == AppendStarted(
            tag=command.tag,
            mailbox=command.mailbox,
            flags=message.flags,
            date=message.internal_date,
            size=len(message.message),
            binary=message.binary,
        )
        assert all(isinstance(d, AppendData) for d in data)
        assert b"".join(d.data for d in data if isinstance(d, AppendData)) == message.message
        assert ended == AppendEnded()
    else:
        assert events == [command]


def _server_sends(m: Message, client: ClientConnection, server: ServerConnection) -> None:
    response = parse_response(m.wire)
    assert server.send(response) == m.wire
    client.receive_data(m.wire)
    events = _drain(client)
    if isinstance(response, r.Continuation):
        assert events == [IdleStarted()]  # the sessions' only "+" starts IDLE
        return
    assert events == [response]
    event = events[0]
    assert isinstance(event, r.Response)
    assert dump(format_response(event)) == m.wire


def test_the_sessions() -> None:
    assert len(SESSIONS) == 13


@pytest.mark.parametrize("block", SESSIONS)
def test_session_replayed_in_both_roles(block: list[Message]) -> None:
    server = ServerConnection(ServerConfig(allow_insecure_auth=True))
    client = ClientConnection()
    assert server.next_event() is PAUSED  # the greeting is owed
    assert block[0].who == "S", "a session starts with the greeting"
    for m in block:
        if _key(m) in INVALID:
            continue  # an elided response of the RFC
        if m.who == "C":
            _client_sends(m, client, server)
        else:
            _server_sends(m, client, server)
    assert server.data_to_send() == b""
    assert client.data_to_send() == b""
