"""SMTP connections through the public API: the server and client state machines, their
limits, the security defaults (smuggling, STARTTLS, AUTH) and whole sessions in pairs.

The server's application is played by the test: it reads events until `PAUSED` and
sends the reply it chooses. Rejections made by the core are `CommandRejected` and
`MessageRejected` events; the test checks the reply they suggest.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

import pytest
from smtp_helpers import Exchange, Responder, events, pending_of, state_of

from mailproto import (
    NEED_DATA,
    PAUSED,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from mailproto.sasl import (
    Challenge,
    ClientMechanism,
    CramMD5Client,
    Failure,
    LoginClient,
    NeedCramMD5Secret,
    NeedScramCredentials,
    PlainClient,
    ScramSha256Client,
    ServerStep,
    Success,
    VerifyPassword,
    scram_credentials,
    server_mechanism,
)
from mailproto.smtp import (
    CLOSED,
    CONNECTED,
    DATA,
    ERROR,
    GREETED,
    MAIL,
    RCPT,
    READY,
    REFUSED,
    TLS_PENDING,
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthResponse,
    Bdat,
    ClientConfig,
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

EXT = ("PIPELINING", "SIZE 1000000", "8BITMIME", "CHUNKING", "DSN", "STARTTLS", "AUTH PLAIN LOGIN")
EHLO_REPLY = Reply(code=250, lines=("mx.example.org", *EXT))
OK = Reply(code=250, enhanced="2.0.0", lines="OK")


# --- helpers --------------------------------------------------------------------------


def one(conn: ServerConnection | ClientConnection, data: bytes = b"") -> SMTPEvent:
    got = events(conn, data)
    assert len(got) == 1, got
    return got[0]


def merged(evs: Iterable[SMTPEvent]) -> list[SMTPEvent]:
    out: list[SMTPEvent] = []
    for e in evs:
        if isinstance(e, MessageData) and out and isinstance(out[-1], MessageData):
            out[-1] = MessageData(out[-1].data + e.data)
        else:
            out.append(e)
    return out


def body_of(evs: Iterable[SMTPEvent]) -> bytes:
    return b"".join(e.data for e in evs if isinstance(e, MessageData))


def greeted(config: ServerConfig | None = None, *, lmtp: bool = False) -> ServerConnection:
    server = ServerConnection(config, lmtp=lmtp)
    assert server.next_event() is PAUSED
    assert server.replies_owed == 1
    assert server.send(Reply(code=220, lines="mx.example.org ESMTP")) == (
        b"220 mx.example.org ESMTP\r\n"
    )
    assert state_of(server) is GREETED
    return server


def server_ready(
    extensions: Iterable[str] | None = EXT,
    config: ServerConfig | None = None,
    *,
    lmtp: bool = False,
) -> ServerConnection:
    """A server past EHLO (LHLO if ``lmtp``), or HELO when ``extensions`` is None."""
    server = greeted(config, lmtp=lmtp)
    if extensions is None:
        assert one(server, b"HELO client.example.net\r\n") == Helo(domain="client.example.net")
        server.send(Reply(code=250, lines="mx.example.org"))
    else:
        verb = b"LHLO" if lmtp else b"EHLO"
        hello = one(server, verb + b" client.example.net\r\n")
        assert isinstance(hello, Lhlo if lmtp else Ehlo)
        server.send(Reply(code=250, lines=("mx.example.org", *extensions)))
    assert state_of(server) is READY
    return server


def command(server: ServerConnection, line: bytes, code: int = 250) -> SMTPEvent:
    """Feed one command line (not refused by the core) and answer it with ``code``."""
    event = one(server, line + b"\r\n")
    assert not isinstance(event, CommandRejected), event
    server.send(Reply(code=code, lines="whatever"))
    return event


def rejected(server: ServerConnection, data: bytes = b"") -> CommandRejected:
    got = events(server, data)
    assert len(got) == 1, got
    assert isinstance(got[0], CommandRejected), got
    return got[0]


def in_transaction(
    extensions: Iterable[str] = EXT, config: ServerConfig | None = None, *, lmtp: bool = False
) -> ServerConnection:
    server = server_ready(extensions, config, lmtp=lmtp)
    command(server, b"MAIL FROM:<alice@example.net>")
    command(server, b"RCPT TO:<bob@example.org>")
    assert state_of(server) is RCPT
    return server


def client_greeted(*, lmtp: bool = False, config: ClientConfig | None = None) -> ClientConnection:
    client = ClientConnection(config, lmtp=lmtp)
    assert state_of(client) is CONNECTED
    assert pending_of(client) == (None,)
    assert one(client, b"220 mx.example.org ESMTP\r\n") == Reply(
        code=220, lines=("mx.example.org ESMTP",)
    )
    assert state_of(client) is GREETED
    return client


def ehlo_reply_bytes(extensions: Iterable[str]) -> bytes:
    lines = ["mx.example.org", *extensions]
    return b"".join(
        f"250{'-' if i < len(lines) - 1 else ' '}{line}\r\n".encode()
        for i, line in enumerate(lines)
    )


def client_ready(extensions: Iterable[str] | None = EXT, *, lmtp: bool = False) -> ClientConnection:
    client = client_greeted(lmtp=lmtp)
    if extensions is None:
        assert client.send(Helo(domain="client.example.net")) == b"HELO client.example.net\r\n"
        one(client, b"250 mx.example.org\r\n")
        assert client.extensions is None
    else:
        hello: SMTPEvent = (
            Lhlo(domain="client.example.net") if lmtp else Ehlo(domain="client.example.net")
        )
        client.send(hello)
        reply = one(client, ehlo_reply_bytes(extensions))
        assert isinstance(reply, Reply)
        assert reply.code == 250
        assert client.extensions is not None
    assert state_of(client) is READY
    return client


# --- server: greeting, replies in order, closing ---------------------------------------


def test_server_owes_the_greeting_first() -> None:
    server = ServerConnection()
    assert state_of(server) is CONNECTED
    server.receive_data(b"EHLO early.example\r\n")
    assert server.next_event() is PAUSED
    with pytest.raises(LocalProtocolError, match="greeting"):
        server.send(Reply(code=250))
    assert server.send(Reply(code=220, enhanced="2.0.0", lines="ready")) == b"220 2.0.0 ready\r\n"
    assert one(server) == Ehlo(domain="early.example")


def test_server_pauses_between_pipelined_commands_and_answers_in_order() -> None:
    server = server_ready()
    server.receive_data(
        b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n"
        b"DATA\r\n"
    )
    seen: list[SMTPEvent] = []
    for code in (250, 251, 550, 354):
        event = server.next_event()
        assert isinstance(event, SMTPEvent)
        seen.append(event)
        assert server.replies_owed == 1
        assert server.next_event() is PAUSED
        server.send(Reply(code=code))
    assert seen == [
        MailFrom(sender="a@example.net"),
        RcptTo(recipient="b@example.org"),
        RcptTo(recipient="c@example.org"),
        Data(),
    ]
    assert state_of(server) is DATA
    assert server.replies_owed == 0
    assert server.next_event() is NEED_DATA


def test_server_send_checks_what_is_owed() -> None:
    server = server_ready()
    with pytest.raises(LocalProtocolError, match="no command"):
        server.send(OK)
    with pytest.raises(LocalProtocolError, match="replies"):
        server.send(Noop())
    with pytest.raises(LocalProtocolError, match="AuthChallenge outside"):
        server.send(AuthChallenge(data=b"x"))
    one(server, b"MAIL FROM:<a@example.net>\r\n")
    with pytest.raises(LocalProtocolError, match="354 is not a reply to MailFrom"):
        server.send(Reply(code=354))
    with pytest.raises(LocalProtocolError, match="send AuthChallenge"):
        server.send(Reply(code=334))
    server.send(Reply(code=250))
    one(server, b"RCPT TO:<b@example.org>\r\n")
    server.send(Reply(code=251, lines="User not local; will forward"))
    one(server, b"DATA\r\n")
    with pytest.raises(LocalProtocolError, match="250 is not a reply to Data"):
        server.send(OK)
    server.send(Reply(code=354))
    assert events(server, b"hi\r\n.\r\n") == [MessageData(b"hi\r\n"), EndOfMessage()]
    with pytest.raises(LocalProtocolError, match="354 is not a reply to EndOfMessage"):
        server.send(Reply(code=354))
    server.send(OK)
    bad = rejected(server, b"FOO\r\n")
    with pytest.raises(LocalProtocolError, match="refused command takes 4xx/5xx"):
        server.send(OK)
    server.send(bad.reply)
    assert server.replies_owed == 0


@pytest.mark.parametrize(
    ("line", "event", "code"),
    [
        (b"NOOP", Noop(), 250),
        (b"NOOP whatever you like", Noop(argument="whatever you like"), 250),
        (b"HELP", Help(), 214),
        (b"HELP MAIL", Help(argument="MAIL"), 211),
        (b"VRFY Crispin", Vrfy(argument="Crispin"), 252),
        (b"EXPN staff", Expn(argument="staff"), 250),
        (b"RSET", Rset(), 250),
    ],
)
def test_commands_allowed_before_hello(line: bytes, event: SMTPEvent, code: int) -> None:
    # RFC 5321 section 4.1.4: NOOP, HELP, EXPN, VRFY and RSET may come at any time.
    server = greeted()
    assert command(server, line, code) == event
    assert state_of(server) is GREETED


def test_ehlo_in_a_transaction_resets_it() -> None:
    server = in_transaction()
    command(server, b"EHLO again.example.net")
    assert state_of(server) is READY
    assert rejected(server, b"RCPT TO:<b@example.org>\r\n").reply.code == 503


def test_rset_ends_the_transaction() -> None:
    server = in_transaction()
    command(server, b"RSET")
    assert state_of(server) is READY
    assert isinstance(command(server, b"MAIL FROM:<>"), MailFrom)
    assert state_of(server) is MAIL


def test_failed_mail_changes_nothing() -> None:
    server = server_ready()
    command(server, b"MAIL FROM:<spammer@example.net>", 550)
    assert state_of(server) is READY
    rejection = rejected(server, b"RCPT TO:<b@example.org>\r\n")
    assert rejection.reply.code == 503
    client = client_ready()
    client.send(MailFrom(sender="spammer@example.net"))
    client.send(RcptTo(recipient="b@example.org"))
    events(client, b"550 5.7.1 no\r\n503 5.5.1 Need MAIL command\r\n")
    assert state_of(client) is READY
    with pytest.raises(LocalProtocolError, match="not allowed now"):
        client.send(RcptTo(recipient="b@example.org"))


def test_failed_rset_changes_nothing() -> None:
    server = in_transaction()
    command(server, b"RSET", 451)
    assert state_of(server) is RCPT
    client = client_ready()
    client.send(MailFrom(sender="a@example.net"))
    client.send(Rset())
    events(client, b"250 ok\r\n451 4.3.0 not now\r\n")
    assert state_of(client) is MAIL


def test_failed_hello_changes_nothing() -> None:
    server = greeted()
    command(server, b"EHLO client.example.net", 550)
    assert state_of(server) is GREETED
    assert server.extensions is None


def test_quit_closes_and_ignores_what_follows() -> None:
    server = server_ready()
    server.receive_data(b"QUIT\r\nNOOP\r\n")
    assert server.next_event() == Quit()
    assert server.send(Reply(code=221, enhanced="2.0.0", lines="Bye")) == b"221 2.0.0 Bye\r\n"
    assert state_of(server) is CLOSED
    assert server.next_event() == ConnectionClosed()
    assert server.next_event() == ConnectionClosed()
    with pytest.raises(LocalProtocolError, match="closed"):
        server.send(OK)


def test_quit_refused_keeps_the_session() -> None:
    server = server_ready()
    command(server, b"QUIT", 500)
    assert state_of(server) is READY


def test_server_eof() -> None:
    server = server_ready()
    server.receive_data(b"NOOP")
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed()
    assert state_of(server) is CLOSED
    with pytest.raises(LocalProtocolError, match="after end of file"):
        server.receive_data(b"\r\n")


def test_server_eof_in_data_and_in_bdat() -> None:
    server = in_transaction()
    command(server, b"DATA", 354)
    assert events(server, b"partial\r\nline") == [MessageData(b"partial\r\n")]
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed()
    assert state_of(server) is CLOSED

    server = in_transaction()
    assert events(server, b"BDAT 10\r\nabc") == [Bdat(size=10), MessageData(b"abc")]
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed()
    assert state_of(server) is CLOSED


def test_server_421_at_any_time() -> None:
    server = in_transaction()
    command(server, b"DATA", 354)
    events(server, b"some body\r\n")
    assert server.send(Reply(code=421, enhanced="4.3.2", lines="Shutting down")) == (
        b"421 4.3.2 Shutting down\r\n"
    )
    assert state_of(server) is CLOSED
    assert server.next_event() == ConnectionClosed()

    server = in_transaction()
    events(server, b"BDAT 100\r\nabc")
    server.send(Reply(code=421))
    assert server.next_event() == ConnectionClosed()

    server = ServerConnection()
    server.send(Reply(code=421, lines="Too busy"))  # as a greeting
    assert state_of(server) is CLOSED


def test_reply_lines_and_enhanced_codes_on_the_wire() -> None:
    server = greeted()
    one(server, b"EHLO c.example\r\n")
    assert server.send(
        Reply(code=250, enhanced="2.0.0", lines=("mx greets c", "PIPELINING", ""))
    ) == (b"250-2.0.0 mx greets c\r\n250-2.0.0 PIPELINING\r\n250 2.0.0\r\n")
    one(server, b"NOOP\r\n")
    assert server.send(Reply(code=250, lines="")) == b"250\r\n"


# --- server: sequence errors ------------------------------------------------------------

NO_CHUNKING = ("PIPELINING", "8BITMIME", "AUTH PLAIN")
INSECURE = ServerConfig(allow_insecure_auth=True)

# (extensions or None for HELO or "greeted" for no hello, config, setup lines with their
# reply codes, command, expected code, enhanced code)
SEQUENCE_ERRORS: dict[
    str,
    tuple[
        tuple[str, ...] | str | None, ServerConfig | None, list[tuple[bytes, int]], bytes, int, str
    ],
] = {
    "mail-before-ehlo": ("greeted", None, [], b"MAIL FROM:<a@example.net>", 503, "5.5.1"),
    "rcpt-before-ehlo": ("greeted", None, [], b"RCPT TO:<a@example.net>", 503, "5.5.1"),
    "data-before-ehlo": ("greeted", None, [], b"DATA", 503, "5.5.1"),
    "bdat-before-ehlo": ("greeted", None, [], b"BDAT 0 LAST", 503, "5.5.1"),
    "starttls-before-ehlo": ("greeted", None, [], b"STARTTLS", 503, "5.5.1"),
    "auth-before-ehlo": ("greeted", INSECURE, [], b"AUTH PLAIN", 503, "5.5.1"),
    "rcpt-before-mail": (EXT, None, [], b"RCPT TO:<b@example.org>", 503, "5.5.1"),
    "data-before-mail": (EXT, None, [], b"DATA", 503, "5.5.1"),
    "bdat-before-mail": (EXT, None, [], b"BDAT 0 LAST", 503, "5.5.1"),
    "mail-twice": (
        EXT,
        None,
        [(b"MAIL FROM:<a@example.net>", 250)],
        b"MAIL FROM:<a@example.net>",
        503,
        "5.5.1",
    ),
    "data-before-rcpt": (EXT, None, [(b"MAIL FROM:<a@example.net>", 250)], b"DATA", 503, "5.5.1"),
    "bdat-before-rcpt": (
        EXT,
        None,
        [(b"MAIL FROM:<a@example.net>", 250)],
        b"BDAT 3 LAST\r\nabc",
        503,
        "5.5.1",
    ),
    "data-no-valid-recipient": (
        EXT,
        None,
        [(b"MAIL FROM:<a@example.net>", 250), (b"RCPT TO:<b@example.org>", 550)],
        b"DATA",
        554,
        "5.5.1",
    ),
    "bdat-no-valid-recipient": (
        EXT,
        None,
        [(b"MAIL FROM:<a@example.net>", 250), (b"RCPT TO:<b@example.org>", 550)],
        b"BDAT 3 LAST\r\nabc",
        554,
        "5.5.1",
    ),
    "bdat-without-chunking": (
        NO_CHUNKING,
        None,
        [(b"MAIL FROM:<a@example.net>", 250), (b"RCPT TO:<b@example.org>", 250)],
        b"BDAT 3 LAST\r\nabc",
        502,
        "5.5.1",
    ),
    "bdat-after-helo": (
        None,
        None,
        [(b"MAIL FROM:<a@example.net>", 250), (b"RCPT TO:<b@example.org>", 250)],
        b"BDAT 3\r\nabc",
        502,
        "5.5.1",
    ),
    "rcpt-after-bdat": (
        EXT,
        None,
        [
            (b"MAIL FROM:<a@example.net>", 250),
            (b"RCPT TO:<b@example.org>", 250),
            (b"BDAT 1\r\nx", 250),
        ],
        b"RCPT TO:<c@example.org>",
        503,
        "5.5.1",
    ),
    "data-after-bdat": (
        EXT,
        None,
        [
            (b"MAIL FROM:<a@example.net>", 250),
            (b"RCPT TO:<b@example.org>", 250),
            (b"BDAT 1\r\nx", 250),
        ],
        b"DATA",
        503,
        "5.5.1",
    ),
    "bdat-after-last": (
        EXT,
        None,
        [
            (b"MAIL FROM:<a@example.net>", 250),
            (b"RCPT TO:<b@example.org>", 250),
            (b"BDAT 1 LAST\r\nx", 250),
        ],
        b"BDAT 1\r\ny",
        503,
        "5.5.1",
    ),
    "data-with-binarymime": (
        (*EXT, "BINARYMIME"),
        None,
        [(b"MAIL FROM:<a@example.net> BODY=BINARYMIME", 250), (b"RCPT TO:<b@example.org>", 250)],
        b"DATA",
        503,
        "5.5.1",
    ),
    "starttls-not-offered": (NO_CHUNKING, None, [], b"STARTTLS", 502, "5.5.1"),
    "starttls-after-helo": (None, None, [], b"STARTTLS", 502, "5.5.1"),
    "starttls-in-transaction": (
        EXT,
        None,
        [(b"MAIL FROM:<a@example.net>", 250)],
        b"STARTTLS",
        503,
        "5.5.1",
    ),
    "starttls-under-implicit-tls": (EXT, ServerConfig(tls=True), [], b"STARTTLS", 503, "5.5.1"),
    "auth-not-offered": (("PIPELINING",), INSECURE, [], b"AUTH PLAIN", 502, "5.5.1"),
    "auth-after-helo": (None, INSECURE, [], b"AUTH PLAIN", 502, "5.5.1"),
    "auth-in-transaction": (
        EXT,
        INSECURE,
        [(b"MAIL FROM:<a@example.net>", 250)],
        b"AUTH PLAIN",
        503,
        "5.5.1",
    ),
    "auth-unknown-mechanism": (EXT, INSECURE, [], b"AUTH CRAM-MD5", 504, "5.5.4"),
    "auth-without-tls": (EXT, None, [], b"AUTH PLAIN", 538, "5.7.11"),
    "size-not-offered": (
        NO_CHUNKING,
        None,
        [],
        b"MAIL FROM:<a@example.net> SIZE=100",
        555,
        "5.5.4",
    ),
    "body-after-helo": (None, None, [], b"MAIL FROM:<a@example.net> BODY=8BITMIME", 555, "5.5.4"),
    "size-after-helo": (None, None, [], b"MAIL FROM:<a@example.net> SIZE=1", 555, "5.5.4"),
    "notify-not-offered": (
        NO_CHUNKING,
        None,
        [(b"MAIL FROM:<a@example.net>", 250)],
        b"RCPT TO:<b@example.org> NOTIFY=NEVER",
        555,
        "5.5.4",
    ),
    "notify-after-helo": (
        None,
        None,
        [(b"MAIL FROM:<a@example.net>", 250)],
        b"RCPT TO:<b@example.org> NOTIFY=NEVER",
        555,
        "5.5.4",
    ),
    "lhlo-in-smtp": ("greeted", None, [], b"LHLO client.example.net", 500, "5.5.2"),
    "bdat-syntax": (EXT, None, [], b"BDAT ten", 501, "5.5.4"),
    "bdat-no-size": (EXT, None, [], b"BDAT", 501, "5.5.4"),
    "unknown-verb": ("greeted", None, [], b"FOO bar", 500, "5.5.2"),
}


@pytest.mark.parametrize("case", sorted(SEQUENCE_ERRORS))
def test_server_sequence_errors(case: str) -> None:
    extensions, config, setup, line, code, enhanced = SEQUENCE_ERRORS[case]
    if extensions == "greeted":
        server = greeted(config)
    else:
        assert not isinstance(extensions, str)
        server = server_ready(extensions, config)
    for setup_line, setup_code in setup:
        server.receive_data(setup_line if b"\r\n" in setup_line else setup_line + b"\r\n")
        got = events(server)
        assert not any(isinstance(e, CommandRejected) for e in got), got
        while server.replies_owed:
            server.send(Reply(code=setup_code))
    state = server.state
    got = events(server, line if b"\r\n" in line else line + b"\r\n")
    # The refused command's bytes (a BDAT chunk too) are consumed, never delivered.
    assert len(got) == 1, got
    event = got[0]
    assert isinstance(event, CommandRejected)
    assert (event.reply.code, event.reply.enhanced) == (code, enhanced)
    assert event.command == line.split(b"\r\n")[0]
    assert server.replies_owed == 1
    server.send(event.reply)
    assert state_of(server) is state
    assert command(server, b"NOOP") == Noop()


def test_refused_session_only_accepts_quit() -> None:
    server = ServerConnection()
    server.send(Reply(code=554, enhanced="5.3.2", lines="No SMTP service here"))
    assert state_of(server) is REFUSED
    for line in (b"EHLO c.example", b"HELO c.example", b"MAIL FROM:<a@example.net>", b"NOOP"):
        event = rejected(server, line + b"\r\n")
        assert (event.reply.code, event.reply.enhanced) == (503, "5.5.1")
        server.send(event.reply)
    assert command(server, b"QUIT", 221) == Quit()
    assert state_of(server) is CLOSED


def test_client_in_refused_session() -> None:
    client = ClientConnection()
    assert one(client, b"554 5.3.2 No SMTP service here\r\n") == Reply(
        code=554, enhanced="5.3.2", lines=("No SMTP service here",)
    )
    assert state_of(client) is REFUSED
    for event in (Ehlo(domain="c.example"), Helo(domain="c.example"), Noop()):
        with pytest.raises(LocalProtocolError, match="not allowed now"):
            client.send(event)
    assert client.send(Quit()) == b"QUIT\r\n"
    one(client, b"221 bye\r\n")
    assert state_of(client) is CLOSED


def test_helo_session_has_no_extensions() -> None:
    server = server_ready(None)
    assert server.extensions is None
    assert isinstance(command(server, b"MAIL FROM:<a@example.net>"), MailFrom)


def test_extra_parameters_when_configured() -> None:
    config = ServerConfig(
        extra_mail_parameters=frozenset({"MT-PRIORITY"}),
        extra_rcpt_parameters=frozenset({"X-TAG"}),
    )
    server = server_ready(EXT, config)
    assert command(server, b"MAIL FROM:<a@example.net> MT-PRIORITY=3") == MailFrom(
        sender="a@example.net", extra=(("MT-PRIORITY", "3"),)
    )
    assert command(server, b"RCPT TO:<b@example.org> X-TAG") == RcptTo(
        recipient="b@example.org", extra=(("X-TAG", None),)
    )


# --- server: limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extensions", "limit"),
    [(("PIPELINING",), 512), (("DSN",), 1112), (("AUTH PLAIN",), 1012), (("DSN", "AUTH X"), 1612)],
)
def test_command_line_limit(extensions: tuple[str, ...], limit: int) -> None:
    server = server_ready(extensions)
    longest = b"NOOP " + b"x" * (limit - 7)
    assert command(server, longest) == Noop(argument="x" * (limit - 7))
    event = rejected(server, longest + b"x\r\n")
    assert (event.reply.code, event.reply.enhanced) == (500, "5.5.2")
    assert event.command == b""
    server.send(event.reply)
    assert command(server, b"NOOP") == Noop()


def test_command_line_limit_trickled_and_huge() -> None:
    server = server_ready()
    for _ in range(2000):
        server.receive_data(b"y" * 1000)
        assert server.next_event() is NEED_DATA
    event = rejected(server, b"\r\nNOOP\r\n")
    server.send(event.reply)
    assert one(server) == Noop()


def test_text_line_limit_in_data() -> None:
    server = in_transaction()
    command(server, b"DATA", 354)
    line = b"a" * 998 + b"\r\n"
    assert merged(events(server, line + b".\r\n")) == [MessageData(line), EndOfMessage()]
    server.send(OK)
    command(server, b"MAIL FROM:<a@example.net>")
    command(server, b"RCPT TO:<b@example.org>")
    command(server, b"DATA", 354)
    got = events(server, b"ok\r\n" + b"a" * 999 + b"\r\nmore\r\n.\r\nNOOP\r\n")
    assert isinstance(got[-1], MessageRejected)
    assert (got[-1].reply.code, got[-1].reply.enhanced) == (500, "5.5.2")
    server.send(got[-1].reply)
    assert state_of(server) is READY
    assert one(server) == Noop()


@pytest.mark.parametrize("size", [100, 101])
def test_message_size_limit_in_data(size: int) -> None:
    server = in_transaction(config=ServerConfig(max_message_size=100))
    command(server, b"DATA", 354)
    body = b"x" * 48 + b"\r\n" + b"y" * (size - 52) + b"\r\n"
    assert len(body) == size
    got = merged(events(server, body + b".\r\n"))
    if size == 100:
        assert got == [MessageData(body), EndOfMessage()]
    else:
        assert isinstance(got[-1], MessageRejected)
        assert (got[-1].reply.code, got[-1].reply.enhanced) == (552, "5.3.4")


def test_message_size_limit_in_bdat() -> None:
    config = ServerConfig(max_message_size=100)
    # One chunk too big: its bytes are skipped, the message fails, the session goes on.
    server = in_transaction(config=config)
    got = events(server, b"BDAT 101 LAST\r\n" + b"z" * 101 + b"NOOP\r\n")
    assert len(got) == 1
    assert isinstance(got[0], MessageRejected)
    assert (got[0].reply.code, got[0].reply.enhanced) == (552, "5.3.4")
    server.send(got[0].reply)
    assert state_of(server) is READY
    assert one(server) == Noop()
    # The sum of the chunks too big: refused at the chunk that crosses the limit.
    server = in_transaction(config=config)
    assert merged(events(server, b"BDAT 60\r\n" + b"a" * 60)) == [
        Bdat(size=60),
        MessageData(b"a" * 60),
        EndOfChunk(),
    ]
    server.send(OK)
    got = events(server, b"BDAT 41\r\n" + b"b" * 41 + b"BDAT 0 LAST\r\n")
    assert len(got) == 1
    assert isinstance(got[0], MessageRejected)
    server.send(got[0].reply)
    # RFC 3030: BDAT after a failed chunk is refused (and its bytes discarded).
    assert state_of(server) is READY
    event = rejected(server)
    assert event.reply.code == 503
    # And at exactly the limit the message goes through.
    server = in_transaction(config=config)
    events(server, b"BDAT 60\r\n" + b"a" * 60)
    server.send(OK)
    assert merged(events(server, b"BDAT 40 LAST\r\n" + b"b" * 40)) == [
        Bdat(size=40, last=True),
        MessageData(b"b" * 40),
        EndOfMessage(),
    ]


def test_size_parameter_over_the_limit() -> None:
    server = server_ready(config=ServerConfig(max_message_size=100))
    event = rejected(server, b"MAIL FROM:<a@example.net> SIZE=101\r\n")
    assert (event.reply.code, event.reply.enhanced) == (552, "5.3.4")
    server.send(event.reply)
    assert command(server, b"MAIL FROM:<a@example.net> SIZE=100") == MailFrom(
        sender="a@example.net", size=100
    )


def test_recipient_limit() -> None:
    server = server_ready(config=ServerConfig(max_recipients=2))
    command(server, b"MAIL FROM:<a@example.net>")
    command(server, b"RCPT TO:<refused@example.org>", 550)  # refused ones do not count
    command(server, b"RCPT TO:<b1@example.org>")
    command(server, b"RCPT TO:<b2@example.org>")
    event = rejected(server, b"RCPT TO:<b3@example.org>\r\n")
    assert (event.reply.code, event.reply.enhanced) == (452, "4.5.3")
    server.send(event.reply)
    assert state_of(server) is RCPT


def test_too_many_errors_in_a_row() -> None:
    server = server_ready(config=ServerConfig(max_errors=3))
    # A success in between resets the count.
    for line in (b"FOO", b"BAR", b"NOOP", b"FOO", b"BAR"):
        event = one(server, line + b"\r\n")
        server.send(event.reply if isinstance(event, CommandRejected) else OK)
    server.send(rejected(server, b"BAZ\r\n").reply)
    server.receive_data(b"NOOP\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        server.next_event()
    hint = info.value.reply_hint
    assert isinstance(hint, Reply)
    assert (hint.code, hint.enhanced) == (421, "4.7.0")
    assert state_of(server) is ERROR
    with pytest.raises(LocalProtocolError, match="after a protocol error"):
        server.next_event()
    with pytest.raises(LocalProtocolError, match="only 421 or 554"):
        server.send(OK)
    assert server.send(hint) == b"421 4.7.0 Too many errors, closing connection\r\n"


def test_application_refusals_count_as_errors() -> None:
    server = server_ready(config=ServerConfig(max_errors=2))
    command(server, b"MAIL FROM:<a@example.net>")
    command(server, b"RCPT TO:<x@example.org>", 550)
    command(server, b"RCPT TO:<y@example.org>", 550)
    server.receive_data(b"RCPT TO:<z@example.org>\r\n")
    with pytest.raises(RemoteProtocolError):
        server.next_event()


# --- server: SMTP smuggling ------------------------------------------------------------

SMUGGLE_ENDINGS = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n"]
SMUGGLED = (
    b"MAIL FROM:<attacker@evil.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
    b"From: ceo@example.org\r\n\r\nsmuggled\r\n"
)


def smuggling_session(
    ending: bytes, config: ServerConfig | None = None, pieces: Iterable[bytes] | None = None
) -> list[SMTPEvent]:
    """DATA with a smuggling attempt, then QUIT; all events, replying 250/221."""
    server = in_transaction(config=config)
    command(server, b"DATA", 354)
    data = b"Subject: hi\r\n\r\nhello" + ending + SMUGGLED + b".\r\nQUIT\r\n"
    got: list[SMTPEvent] = []
    for piece in pieces if pieces is not None else [data]:
        server.receive_data(piece)
        got += events(server)
        if got and isinstance(got[-1], EndOfMessage | MessageRejected):
            while server.replies_owed:
                server.send(got[-1].reply if isinstance(got[-1], MessageRejected) else OK)
            got += events(server)
    assert got[-1] == Quit()
    return got


def without_refused_data(evs: list[SMTPEvent]) -> list[SMTPEvent]:
    """What an application keeps: body chunks before a MessageRejected are discarded."""
    out = merged(evs)
    for i, e in enumerate(out):
        if isinstance(e, MessageRejected) and i and isinstance(out[i - 1], MessageData):
            del out[i - 1]
            break
    return out


@pytest.mark.parametrize("ending", SMUGGLE_ENDINGS)
def test_smuggling_refused_by_default(ending: bytes) -> None:
    got = without_refused_data(smuggling_session(ending))
    assert len(got) == 2
    rejection = got[0]
    assert isinstance(rejection, MessageRejected)
    assert (rejection.reply.code, rejection.reply.enhanced) == (550, "5.5.2")
    assert got[1] == Quit()


@pytest.mark.parametrize("ending", SMUGGLE_ENDINGS)
def test_smuggling_normalized_is_body_content(ending: bytes) -> None:
    got = merged(smuggling_session(ending, ServerConfig(bare_line_endings="normalize")))
    assert [type(e) for e in got] == [MessageData, EndOfMessage, Quit]
    body = body_of(got)
    assert b"\r\nMAIL FROM:<attacker@evil.example>\r\nRCPT TO:<victim@example.org>\r\n" in body
    assert body.endswith(b"smuggled\r\n")
    assert b"\r" not in body.replace(b"\r\n", b"")
    assert b"\n" not in body.replace(b"\r\n", b"")


@pytest.mark.parametrize("mode", ["reject", "normalize"])
@pytest.mark.parametrize("ending", SMUGGLE_ENDINGS)
def test_smuggling_same_events_in_any_chunking(ending: bytes, mode: str) -> None:
    config = ServerConfig(bare_line_endings="reject" if mode == "reject" else "normalize")
    data = b"Subject: hi\r\n\r\nhello" + ending + SMUGGLED + b".\r\nQUIT\r\n"
    whole = without_refused_data(smuggling_session(ending, config))
    bytewise = [data[i : i + 1] for i in range(len(data))]
    assert without_refused_data(smuggling_session(ending, config, bytewise)) == whole
    for cut in range(1, len(data)):
        pieces = [data[:cut], data[cut:]]
        assert without_refused_data(smuggling_session(ending, config, pieces)) == whole, cut


def test_lone_dot_lines_are_not_the_end() -> None:
    server = in_transaction()
    command(server, b"DATA", 354)
    got = merged(events(server, b"..\r\n...leading\r\n. \r\n.x\r\n.\r\n"))
    assert got == [MessageData(b".\r\n..leading\r\n \r\nx\r\n"), EndOfMessage()]


# --- STARTTLS -----------------------------------------------------------------------------


def test_starttls_restarts_the_session() -> None:
    server = server_ready()
    assert one(server, b"STARTTLS\r\n") == StartTLS()
    server.send(Reply(code=220, enhanced="2.0.0", lines="Ready to start TLS"))
    assert state_of(server) is TLS_PENDING
    assert server.next_event() is PAUSED
    server.start_tls()
    assert state_of(server) is GREETED
    assert server.session.tls
    assert server.extensions is None
    event = rejected(server, b"MAIL FROM:<a@example.net>\r\n")
    assert event.reply.code == 503
    server.send(event.reply)
    command(server, b"EHLO client.example.net")
    assert server.extensions is not None
    assert "STARTTLS" not in server.extensions
    event = rejected(server, b"STARTTLS\r\n")
    assert event.reply.code == 502


def test_starttls_refused_by_the_application() -> None:
    server = server_ready()
    command(server, b"STARTTLS", 454)
    assert state_of(server) is READY
    with pytest.raises(LocalProtocolError, match="only valid after a 220"):
        server.start_tls()


def test_starttls_twice_is_refused() -> None:
    server = server_ready()
    command(server, b"STARTTLS", 220)
    server.start_tls()
    one(server, b"EHLO client.example.net\r\n")
    server.send(EHLO_REPLY)  # this server offers STARTTLS again
    event = rejected(server, b"STARTTLS\r\n")
    assert (event.reply.code, event.reply.enhanced) == (503, "5.5.1")


@pytest.mark.parametrize("when", ["same packet", "before start_tls"])
def test_plaintext_pipelined_after_starttls(when: str) -> None:
    server = server_ready()
    injected = b"MAIL FROM:<attacker@evil.example>\r\n"
    first = b"STARTTLS\r\n" + (injected if when == "same packet" else b"")
    assert one(server, first) == StartTLS()
    server.send(Reply(code=220))
    if when != "same packet":
        server.receive_data(injected)
    assert server.next_event() is PAUSED
    with pytest.raises(RemoteProtocolError, match="STARTTLS") as info:
        server.start_tls()
    hint = info.value.reply_hint
    assert isinstance(hint, Reply)
    assert (hint.code, hint.enhanced) == (554, "5.5.1")
    assert state_of(server) is ERROR
    assert server.send(hint) == b"554 5.5.1 Command pipelining after STARTTLS\r\n"


def test_client_starttls() -> None:
    client = client_ready()
    assert client.send(StartTLS()) == b"STARTTLS\r\n"
    with pytest.raises(LocalProtocolError, match="only valid after a 220"):
        client.start_tls()
    one(client, b"220 2.0.0 Ready\r\n")
    assert state_of(client) is TLS_PENDING
    assert client.next_event() is PAUSED
    with pytest.raises(LocalProtocolError, match="start_tls"):
        client.send(Ehlo(domain="c.example"))
    client.start_tls()
    assert state_of(client) is GREETED
    assert client.session.tls
    assert client.extensions is None
    with pytest.raises(LocalProtocolError, match="not allowed now"):
        client.send(MailFrom(sender="a@example.net"))
    client.send(Ehlo(domain="c.example"))
    one(client, ehlo_reply_bytes(("PIPELINING", "AUTH PLAIN")))
    with pytest.raises(LocalProtocolError, match="STARTTLS not offered"):
        client.send(StartTLS())


def test_client_refuses_bytes_after_the_220_to_starttls() -> None:
    client = client_ready()
    client.send(StartTLS())
    assert one(client, b"220 Ready\r\n250 injected\r\n") == Reply(code=220, lines=("Ready",))
    assert client.next_event() is PAUSED
    with pytest.raises(RemoteProtocolError, match="after its 220"):
        client.start_tls()
    assert state_of(client) is ERROR
    with pytest.raises(LocalProtocolError):
        client.send(Noop())


def test_client_starttls_refused() -> None:
    client = client_ready()
    client.send(StartTLS())
    one(client, b"454 4.7.0 TLS not available\r\n")
    assert state_of(client) is READY
    assert client.send(MailFrom(sender="a@example.net")) == b"MAIL FROM:<a@example.net>\r\n"


# --- AUTH ------------------------------------------------------------------------------

SCRAM_USERS = {"user": "pencil"}


def run_sasl(
    client: ClientConnection,
    server: ServerConnection,
    mechanism: ClientMechanism,
    *,
    initial: bool,
) -> tuple[Reply, list[SMTPEvent]]:
    """A whole AUTH exchange through both connections, with real SASL mechanisms."""
    ir = mechanism.initial_response() if initial else None
    server_events: list[SMTPEvent] = []
    server.receive_data(client.send(Auth(mechanism=mechanism.name, initial_response=ir)))
    event = one(server)
    server_events.append(event)
    if isinstance(event, CommandRejected):
        client.receive_data(server.send(event.reply))
        reply = one(client)
        assert isinstance(reply, Reply)
        return reply, server_events
    assert isinstance(event, Auth)
    mech = server_mechanism(event.mechanism, nonce=b"fixed-nonce-for-tests")
    step: ServerStep = mech.start(event.initial_response)
    success_data = False
    while True:
        if isinstance(step, VerifyPassword):
            step = mech.verified(SCRAM_USERS.get(step.username) == step.password)
            continue
        if isinstance(step, NeedCramMD5Secret):
            step = mech.respond_with_secret(SCRAM_USERS.get(step.username))
            continue
        if isinstance(step, NeedScramCredentials):
            password = SCRAM_USERS.get(step.username)
            step = mech.respond_with_credentials(
                scram_credentials(password, iterations=4096) if password else None
            )
            continue
        if isinstance(step, Success) and step.data and not success_data:
            # RFC 4954: additional data with success goes in a last 334.
            success_data = True
            step = Challenge(data=step.data)
        if isinstance(step, Challenge):
            client.receive_data(server.send(AuthChallenge(data=step.data)))
            challenge = one(client)
            assert isinstance(challenge, AuthChallenge)
            assert challenge.data == step.data
            answer = mechanism.respond(challenge.data)
            server.receive_data(client.send(AuthResponse(data=answer)))
            response = one(server)
            server_events.append(response)
            assert response == AuthResponse(data=answer)
            if success_data:
                assert answer == b""
                step = Success(username="user", authzid="", data=None)
            else:
                step = mech.receive(answer)
            continue
        if isinstance(step, Success):
            reply = Reply(code=235, enhanced="2.7.0", lines="Authentication successful")
        else:
            assert isinstance(step, Failure)
            reply = Reply(code=535, enhanced="5.7.8", lines="Authentication credentials invalid")
        client.receive_data(server.send(reply))
        got = one(client)
        assert got == reply
        return reply, server_events


def auth_pair(
    mechanisms: str = "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256",
) -> tuple[ClientConnection, ServerConnection]:
    extensions = ("PIPELINING", f"AUTH {mechanisms}")
    server = server_ready(extensions, ServerConfig(tls=True))
    client = client_ready(extensions)
    return client, server


@pytest.mark.parametrize(
    ("mechanism", "initial"),
    [
        (PlainClient("user", "pencil"), True),
        (PlainClient("user", "pencil"), False),
        (LoginClient("user", "pencil"), False),
        (CramMD5Client("user", "pencil"), False),
        (ScramSha256Client("user", "pencil"), True),
        (ScramSha256Client("user", "pencil"), False),
    ],
    ids=["plain-ir", "plain", "login", "cram-md5", "scram-ir", "scram"],
)
def test_auth_with_real_sasl(mechanism: ClientMechanism, initial: bool) -> None:
    client, server = auth_pair()
    reply, server_events = run_sasl(client, server, mechanism, initial=initial)
    assert reply.code == 235
    assert isinstance(server_events[0], Auth)
    assert (server_events[0].initial_response is not None) == initial
    # Every step after the command went through as a decoded AuthResponse.
    assert all(isinstance(e, AuthResponse) for e in server_events[1:])
    assert client.session.authenticated
    assert server.session.authenticated
    assert not client.session.in_auth
    assert not server.session.in_auth
    # Authenticated once is enough (RFC 4954 section 4).
    with pytest.raises(LocalProtocolError, match="not allowed now"):
        client.send(Auth(mechanism="PLAIN"))
    event = rejected(server, b"AUTH PLAIN\r\n")
    assert (event.reply.code, event.reply.enhanced) == (503, "5.5.1")


@pytest.mark.parametrize(
    "mechanism",
    [PlainClient("user", "wrong"), LoginClient("user", "wrong"), CramMD5Client("nobody", "x")],
    ids=["plain", "login", "cram-md5"],
)
def test_auth_failure_allows_another_try(mechanism: ClientMechanism) -> None:
    client, server = auth_pair()
    reply, _ = run_sasl(client, server, mechanism, initial=False)
    assert reply.code == 535
    assert not client.session.authenticated
    assert not server.session.authenticated
    reply, _ = run_sasl(client, server, PlainClient("user", "pencil"), initial=True)
    assert reply.code == 235


def test_auth_initial_response_bytes() -> None:
    client, server = auth_pair()
    secret = b"\x00user\x00pencil"
    line = client.send(Auth(mechanism="PLAIN", initial_response=secret))
    assert line == b"AUTH PLAIN " + base64.b64encode(secret) + b"\r\n"
    assert one(server, line) == Auth(mechanism="PLAIN", initial_response=secret)


def test_auth_empty_initial_response() -> None:
    client, server = auth_pair()
    line = client.send(Auth(mechanism="PLAIN", initial_response=b""))
    assert line == b"AUTH PLAIN =\r\n"
    assert one(server, line) == Auth(mechanism="PLAIN", initial_response=b"")
    # An empty PLAIN message is malformed: the mechanism fails it.
    step = server_mechanism("PLAIN").start(b"")
    assert isinstance(step, Failure)
    assert step.code == "malformed"


def test_auth_cancelled_with_star() -> None:
    client, server = auth_pair()
    server.receive_data(client.send(Auth(mechanism="LOGIN")))
    assert one(server) == Auth(mechanism="LOGIN")
    client.receive_data(server.send(AuthChallenge(data=b"Username:")))
    assert one(client) == AuthChallenge(data=b"Username:")
    assert client.send(AuthCancel()) == b"*\r\n"
    assert one(server, b"*\r\n") == AuthCancel()
    with pytest.raises(LocalProtocolError, match="235 is not a reply to AuthCancel"):
        server.send(Reply(code=235))
    client.receive_data(server.send(Reply(code=501, enhanced="5.0.0", lines="Cancelled")))
    assert one(client) == Reply(code=501, enhanced="5.0.0", lines=("Cancelled",))
    assert not server.session.in_auth
    assert not client.session.in_auth
    assert command(server, b"NOOP") == Noop()


def test_auth_response_bad_base64() -> None:
    client, server = auth_pair()
    server.receive_data(client.send(Auth(mechanism="PLAIN")))
    one(server)
    server.send(AuthChallenge(data=b""))
    event = rejected(server, b"not base64!\r\n")
    assert (event.reply.code, event.reply.enhanced) == (501, "5.5.2")
    assert event.command == b""
    server.send(event.reply)
    assert not server.session.in_auth
    assert command(server, b"NOOP") == Noop()


def test_auth_response_too_long_ends_the_exchange() -> None:
    # Bug fixed: the server kept waiting for a SASL response after refusing an over-long
    # one, and read the next command (here NOOP, valid base64) as the response.
    server = server_ready(("AUTH PLAIN",), ServerConfig(tls=True, max_auth_line=100))
    one(server, b"AUTH PLAIN\r\n")
    server.send(AuthChallenge(data=b""))
    event = rejected(server, b"A" * 200 + b"\r\n")
    assert (event.reply.code, event.reply.enhanced, event.command) == (500, "5.5.2", b"")
    server.send(event.reply)
    assert not server.session.in_auth
    assert command(server, b"NOOP") == Noop()


def test_auth_line_limit_is_larger_for_responses() -> None:
    server = server_ready(("AUTH PLAIN",), ServerConfig(tls=True))
    one(server, b"AUTH PLAIN\r\n")
    server.send(AuthChallenge(data=b""))
    payload = b"\x00user\x00" + b"p" * 3000
    line = base64.b64encode(payload)
    assert len(line) > 1012
    assert one(server, line + b"\r\n") == AuthResponse(data=payload)


@pytest.mark.parametrize(
    ("setup", "line", "code"),
    [
        ("plaintext", b"AUTH PLAIN AHVzZXIAc2VjcmV0cGFzcw==", 538),
        ("tls", b"AUTH CRAM-MD5 AHVzZXIAc2VjcmV0cGFzcw==", 504),
        ("tls", b"AUTH PLAIN AHVzZXIAc2VjcmV0cGFzcw==garbage", 501),
        ("tls", b"AUTH PLAIN AHVzZXIAc2VjcmV0cGFzcw== extra", 501),
        ("not offered", b"AUTH PLAIN AHVzZXIAc2VjcmV0cGFzcw==", 502),
        ("in transaction", b"AUTH PLAIN AHVzZXIAc2VjcmV0cGFzcw==", 503),
        ("tls", b"auth plain AHVzZXIAc2VjcmV0cGFzcw== !", 501),
        ("tls", b"AUTH\tPLAIN AHVzZXIAc2VjcmV0cGFzcw==", 500),
        ("plaintext", b"AUTH  PLAIN  AHVzZXIAc2VjcmV0cGFzcw==", 538),
    ],
)
def test_auth_lines_never_leak_the_secret(setup: str, line: bytes, code: int) -> None:
    config = ServerConfig(tls=setup != "plaintext")
    extensions = ("PIPELINING",) if setup == "not offered" else ("AUTH PLAIN",)
    server = server_ready(extensions, config)
    if setup == "in transaction":
        command(server, b"MAIL FROM:<a@example.net>")
    event = rejected(server, line + b"\r\n")
    assert event.reply.code == code
    assert b"AHVzZXIA" not in event.command
    assert event.command == b" ".join(line.split()[:2])


def test_auth_allowed_in_plaintext_when_configured() -> None:
    server = server_ready(("AUTH PLAIN",), ServerConfig(allow_insecure_auth=True))
    assert one(server, b"AUTH PLAIN =\r\n") == Auth(mechanism="PLAIN", initial_response=b"")


def test_server_auth_challenge_only_during_auth() -> None:
    server = server_ready(("AUTH PLAIN",), ServerConfig(tls=True))
    one(server, b"AUTH PLAIN\r\n")
    assert server.send(AuthChallenge(data=b"")) == b"334 \r\n"
    one(server, b"AGEAYg==\r\n")
    assert server.send(AuthChallenge(data=b"more?")) == b"334 bW9yZT8=\r\n"
    one(server, b"\r\n")  # an empty response
    server.send(Reply(code=235))
    assert server.session.authenticated
    with pytest.raises(LocalProtocolError, match="AuthChallenge outside"):
        server.send(AuthChallenge(data=b""))


def test_client_auth_rules() -> None:
    client, _ = auth_pair()
    with pytest.raises(LocalProtocolError, match="no AUTH challenge"):
        client.send(AuthResponse(data=b"x"))
    client.send(Auth(mechanism="LOGIN"))
    with pytest.raises(LocalProtocolError, match="no AUTH challenge"):
        client.send(AuthCancel())
    one(client, b"334 VXNlcm5hbWU6\r\n")
    # Bug fixed: a client could send a command while the server waits for a SASL
    # response, which the server then decodes as base64.
    with pytest.raises(LocalProtocolError, match="answer the AUTH challenge"):
        client.send(Noop())
    assert client.send(AuthResponse(data=b"user")) == b"dXNlcg==\r\n"
    with pytest.raises(LocalProtocolError, match="no AUTH challenge"):
        client.send(AuthResponse(data=b"again"))
    assert one(client, b"334 UGFzc3dvcmQ6\r\n") == AuthChallenge(data=b"Password:")
    client.send(AuthResponse(data=b""))
    assert one(client, b"235 2.7.0 OK\r\n") == Reply(code=235, enhanced="2.7.0", lines=("OK",))
    assert client.session.authenticated


def test_client_auth_must_be_offered_and_ends_a_group() -> None:
    client = client_ready(("PIPELINING",))
    with pytest.raises(LocalProtocolError, match="AUTH not offered"):
        client.send(Auth(mechanism="PLAIN"))
    client = client_ready(("AUTH PLAIN",))
    mail = MailFrom(sender="a@example.net")
    client.send(mail)
    assert pending_of(client) == (mail,)
    with pytest.raises(LocalProtocolError, match="PIPELINING"):
        client.send(Auth(mechanism="PLAIN"))


# --- client: pipelining -----------------------------------------------------------------


def test_client_waits_for_each_reply_without_pipelining() -> None:
    client = client_ready(("8BITMIME",))
    client.send(MailFrom(sender="a@example.net"))
    with pytest.raises(LocalProtocolError, match="did not offer PIPELINING"):
        client.send(RcptTo(recipient="b@example.org"))
    one(client, b"250 OK\r\n")
    client.send(RcptTo(recipient="b@example.org"))
    one(client, b"250 OK\r\n")
    client.send(Data())
    one(client, b"354 go\r\n")
    client.send(EndOfMessage())
    with pytest.raises(LocalProtocolError, match="did not offer PIPELINING"):
        client.send(Quit())


def test_client_pipelines_a_transaction() -> None:
    client = client_ready()
    sent = b"".join(
        client.send(e)
        for e in (
            MailFrom(sender="a@example.net"),
            RcptTo(recipient="b@example.org"),
            RcptTo(recipient="c@example.org"),
            Data(),
        )
    )
    assert sent == (
        b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n"
        b"DATA\r\n"
    )
    assert len(client.pending) == 4
    replies = events(client, b"250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n")
    assert [r.code for r in replies if isinstance(r, Reply)] == [250, 250, 550, 354]
    assert state_of(client) is DATA
    assert pending_of(client) == ()
    assert client.send(MessageData(b"hi")) == b"hi"
    assert client.send(EndOfMessage()) == b"\r\n.\r\n"
    # After the final dot the next group may start at once (RFC 2920).
    assert client.send(MailFrom(sender="a@example.net")) == b"MAIL FROM:<a@example.net>\r\n"
    assert client.send(Rset()) == b"RSET\r\n"
    assert client.send(Quit()) == b"QUIT\r\n"
    events(client, b"250 queued\r\n250 ok\r\n250 ok\r\n221 bye\r\n")
    assert state_of(client) is CLOSED


ENDS_GROUP: list[tuple[str, list[SMTPEvent]]] = [
    ("EHLO", [Ehlo(domain="c.example")]),
    ("HELO", [Helo(domain="c.example")]),
    ("NOOP", [Noop()]),
    ("VRFY", [Vrfy(argument="bob")]),
    ("EXPN", [Expn(argument="staff")]),
    ("QUIT", [Quit()]),
    ("STARTTLS", [StartTLS()]),
    ("AUTH", [Auth(mechanism="PLAIN")]),
    ("DATA", [MailFrom(sender="a@example.net"), RcptTo(recipient="b@example.org"), Data()]),
]


@pytest.mark.parametrize("name", [name for name, _ in ENDS_GROUP])
def test_commands_that_end_a_pipelining_group(name: str) -> None:
    client = client_ready()
    for event in dict(ENDS_GROUP)[name]:
        client.send(event)
    with pytest.raises(LocalProtocolError, match="must be answered before"):
        client.send(Rset())


def test_commands_that_do_not_end_a_group() -> None:
    client = client_ready()
    group: list[SMTPEvent] = [
        Rset(),
        MailFrom(sender="a@example.net"),
        RcptTo(recipient="b@example.org"),
        Bdat(size=2),
        MessageData(b"ab"),
        Bdat(size=0, last=True),
        Help(),
        MailFrom(sender=""),
        RcptTo(recipient="postmaster"),
        Rset(),
        Noop(),
    ]
    for event in group:
        client.send(event)
    assert [type(p) for p in client.pending] == [
        Rset,
        MailFrom,
        RcptTo,
        Bdat,
        Bdat,
        Help,
        MailFrom,
        RcptTo,
        Rset,
        Noop,
    ]


def test_client_resynchronises_on_failures() -> None:
    client = client_ready()
    client.send(MailFrom(sender="a@example.net"))
    client.send(RcptTo(recipient="b@example.org"))
    client.send(Data())
    events(client, b"250 ok\r\n550 5.1.1 unknown\r\n554 5.5.1 No valid recipients\r\n")
    assert state_of(client) is MAIL
    with pytest.raises(LocalProtocolError, match="not allowed now"):
        client.send(Data())
    client.send(RcptTo(recipient="c@example.org"))
    one(client, b"250 ok\r\n")
    assert state_of(client) is RCPT
    client.send(Data())
    one(client, b"451 4.3.0 try later\r\n")
    assert state_of(client) is RCPT
    with pytest.raises(LocalProtocolError, match="no message body"):
        client.send(MessageData(b"x"))
    client.send(Rset())
    one(client, b"250 ok\r\n")
    assert state_of(client) is READY


# --- client: wrong states, parameters, addresses ------------------------------------------

CLIENT_SEQUENCE_ERRORS: dict[str, tuple[tuple[str, ...] | None, list[SMTPEvent], SMTPEvent]] = {
    "mail-before-ehlo": (
        ("greeted",),
        [],
        MailFrom(sender="a@example.net"),
    ),
    "rcpt-before-mail": (EXT, [], RcptTo(recipient="b@example.org")),
    "data-before-mail": (EXT, [], Data()),
    "data-before-rcpt": (EXT, [MailFrom(sender="a@example.net")], Data()),
    "mail-twice": (EXT, [MailFrom(sender="a@example.net")], MailFrom(sender="a@example.net")),
    "bdat-without-chunking": (
        ("PIPELINING",),
        [MailFrom(sender="a@example.net"), RcptTo(recipient="b@example.org")],
        Bdat(size=1, last=True),
    ),
    "bdat-after-helo": (None, [], Bdat(size=1)),
    "starttls-not-offered": (("PIPELINING",), [], StartTLS()),
    "starttls-in-transaction": (EXT, [MailFrom(sender="a@example.net")], StartTLS()),
    "auth-in-transaction": (EXT, [MailFrom(sender="a@example.net")], Auth(mechanism="PLAIN")),
    "lhlo-in-smtp": (("greeted",), [], Lhlo(domain="c.example")),
    "data-after-bdat": (
        EXT,
        [MailFrom(sender="a@example.net"), RcptTo(recipient="b@example.org"), Bdat(size=0)],
        Data(),
    ),
    "rcpt-after-bdat": (
        EXT,
        [MailFrom(sender="a@example.net"), RcptTo(recipient="b@example.org"), Bdat(size=0)],
        RcptTo(recipient="c@example.org"),
    ),
}


@pytest.mark.parametrize("case", sorted(CLIENT_SEQUENCE_ERRORS))
def test_client_sequence_errors(case: str) -> None:
    extensions, setup, event = CLIENT_SEQUENCE_ERRORS[case]
    client = client_greeted() if extensions == ("greeted",) else client_ready(extensions)
    for e in setup:
        client.send(e)
    with pytest.raises(LocalProtocolError, match="not allowed now"):
        client.send(event)


def test_client_must_wait_for_the_greeting_and_sends_no_replies() -> None:
    client = ClientConnection()
    with pytest.raises(LocalProtocolError, match="greeting"):
        client.send(Ehlo(domain="c.example"))
    one(client, b"220 hi\r\n")
    for event in (
        OK,
        AuthChallenge(data=b""),
        CommandRejected(reply=OK),
        MessageRejected(reply=OK),
    ):
        with pytest.raises(LocalProtocolError, match="does not send"):
            client.send(event)
    with pytest.raises(LocalProtocolError, match="EndOfMessage outside"):
        client.send(EndOfMessage())


@pytest.mark.parametrize(
    ("offered", "event", "missing"),
    [
        ((), MailFrom(sender="a@example.net", size=10), "SIZE"),
        ((), MailFrom(sender="a@example.net", body="8BITMIME"), "8BITMIME"),
        ((), MailFrom(sender="a@example.net", body="7BIT"), "8BITMIME"),
        (("8BITMIME",), MailFrom(sender="a@example.net", body="BINARYMIME"), "BINARYMIME"),
        ((), MailFrom(sender="a@example.net", smtputf8=True), "SMTPUTF8"),
        ((), MailFrom(sender="a@example.net", auth="a@example.net"), "AUTH"),
        ((), MailFrom(sender="a@example.net", ret="HDRS"), "DSN"),
        ((), MailFrom(sender="a@example.net", envid="x"), "DSN"),
        ((), RcptTo(recipient="b@example.org", notify=frozenset()), "DSN"),
        ((), RcptTo(recipient="b@example.org", orcpt=("rfc822", "b@example.org")), "DSN"),
    ],
)
def test_client_refuses_parameters_not_offered(
    offered: tuple[str, ...], event: SMTPEvent, missing: str
) -> None:
    client = client_ready(("PIPELINING", *offered))
    if isinstance(event, RcptTo):
        client.send(MailFrom(sender="a@example.net"))
    with pytest.raises(LocalProtocolError, match=f"did not offer {missing}"):
        client.send(event)


def test_client_refuses_parameters_after_helo() -> None:
    client = client_ready(None)
    with pytest.raises(LocalProtocolError, match="did not offer SIZE"):
        client.send(MailFrom(sender="a@example.net", size=1))


def test_client_sends_offered_parameters() -> None:
    client = client_ready(
        ("PIPELINING", "SIZE", "8BITMIME", "BINARYMIME", "SMTPUTF8", "DSN", "AUTH PLAIN")
    )
    mail = MailFrom(
        sender="jürgen@bücher.example",
        size=1234,
        body="8BITMIME",
        smtputf8=True,
        auth="a+b@example.net",
        ret="HDRS",
        envid="id=1",
    )
    assert (
        client.send(mail)
        == (
            "MAIL FROM:<jürgen@bücher.example> SIZE=1234 BODY=8BITMIME SMTPUTF8 "
            "AUTH=a+2Bb@example.net RET=HDRS ENVID=id+3D1\r\n"
        ).encode()
    )
    rcpt = RcptTo(
        recipient="zoë@bücher.example",
        notify=frozenset({"FAILURE", "DELAY"}),
        orcpt=("rfc822", "zoë@bücher.example"),
    )
    assert (
        client.send(rcpt)
        == (
            "RCPT TO:<zoë@bücher.example> NOTIFY=FAILURE,DELAY "
            "ORCPT=rfc822;zo+C3+AB@b+C3+BCcher.example\r\n"
        ).encode()
    )


@pytest.mark.parametrize(
    "event",
    [
        MailFrom(sender="not an address"),
        MailFrom(sender="a@b@example.net"),
        MailFrom(sender="jürgen@example.net"),  # no SMTPUTF8 in this transaction
        RcptTo(recipient="bob"),
        RcptTo(recipient="bob@[300.1.1.1]"),
    ],
)
def test_client_refuses_invalid_addresses(event: SMTPEvent) -> None:
    client = client_ready()
    if isinstance(event, RcptTo):
        client.send(MailFrom(sender=""))
    with pytest.raises(LocalProtocolError, match="not a valid"):
        client.send(event)


def test_client_accepts_postmaster_and_null_sender() -> None:
    client = client_ready()
    assert client.send(MailFrom(sender="")) == b"MAIL FROM:<>\r\n"
    assert client.send(RcptTo(recipient="Postmaster")) == b"RCPT TO:<Postmaster>\r\n"


@pytest.mark.parametrize(
    "event",
    [
        Ehlo(domain="bücher.example"),
        Helo(domain="bücher.example"),
        Lhlo(domain="bü.ch"),
        Noop(argument="café"),
        Help(argument="für"),
    ],
)
def test_client_commands_must_be_ascii(event: SMTPEvent) -> None:
    # Our server refuses these (500 5.5.2); the client does not send them.
    client = client_greeted(lmtp=isinstance(event, Lhlo))
    with pytest.raises(LocalProtocolError, match="ASCII"):
        client.send(event)
    assert pending_of(client) == ()


@pytest.mark.parametrize("line", ["NOOP café", "HELP für", "EHLO bücher.example"])
def test_server_refuses_non_ascii_commands(line: str) -> None:
    event = rejected(greeted(), line.encode() + b"\r\n")
    assert (event.reply.code, event.reply.enhanced) == (500, "5.5.2")


def test_client_closed_session() -> None:
    client = client_ready()
    client.send(Quit())
    one(client, b"221 bye\r\n")
    assert state_of(client) is CLOSED
    with pytest.raises(LocalProtocolError, match="closed"):
        client.send(Noop())


# --- client: message bodies ---------------------------------------------------------------


def client_in_data() -> ClientConnection:
    client = client_ready()
    for e in (MailFrom(sender="a@example.net"), RcptTo(recipient="b@example.org"), Data()):
        client.send(e)
    events(client, b"250 ok\r\n250 ok\r\n354 go\r\n")
    assert state_of(client) is DATA
    return client


@pytest.mark.parametrize(
    ("pieces", "wire"),
    [
        ([b""], b".\r\n"),
        ([b"a"], b"a\r\n.\r\n"),
        ([b"a\r\n"], b"a\r\n.\r\n"),
        ([b".hidden\r\n"], b"..hidden\r\n.\r\n"),
        ([b"x\r\n.\r\n"], b"x\r\n..\r\n.\r\n"),
        ([b"x\n.\ny"], b"x\r\n..\r\ny\r\n.\r\n"),
        ([b"x\r", b"\n.y"], b"x\r\n..y\r\n.\r\n"),
        ([b"x\r", b".y"], b"x\r\n..y\r\n.\r\n"),
        ([b"x\r"], b"x\r\n.\r\n"),
        ([b"a\rb\n\rc"], b"a\r\nb\r\n\r\nc\r\n.\r\n"),
        ([b"x\r\n", b".", b"\r\n"], b"x\r\n..\r\n.\r\n"),
        (
            [b"MAIL FROM:<x@y.example>\r\n.\r\nQUIT\r\n"],
            b"MAIL FROM:<x@y.example>\r\n..\r\nQUIT\r\n.\r\n",
        ),
    ],
)
def test_client_dot_stuffing_and_line_endings(pieces: list[bytes], wire: bytes) -> None:
    client = client_in_data()
    out = b"".join(client.send(MessageData(p)) for p in pieces)
    assert out + client.send(EndOfMessage()) == wire


def test_client_body_rules() -> None:
    client = client_ready()
    with pytest.raises(LocalProtocolError, match="no message body"):
        client.send(MessageData(b"x"))
    client = client_in_data()
    client.send(MessageData(b"x"))
    with pytest.raises(LocalProtocolError, match="body is being sent"):
        client.send(Rset())
    client.send(EndOfMessage())
    assert pending_of(client) == (EndOfMessage(),)
    with pytest.raises(LocalProtocolError, match="EndOfMessage outside"):
        client.send(EndOfMessage())
    assert one(client, b"250 2.0.0 queued\r\n") == Reply(
        code=250, enhanced="2.0.0", lines=("queued",)
    )
    assert state_of(client) is READY


def test_client_bdat_accounting() -> None:
    client = client_ready()
    client.send(MailFrom(sender="a@example.net"))
    client.send(RcptTo(recipient="b@example.org"))
    assert client.send(Bdat(size=5)) == b"BDAT 5\r\n"
    assert client.send(MessageData(b"ab")) == b"ab"
    with pytest.raises(LocalProtocolError, match="more data than"):
        client.send(MessageData(b"cdef"))
    with pytest.raises(LocalProtocolError, match="body is being sent"):
        client.send(Bdat(size=1, last=True))
    with pytest.raises(LocalProtocolError, match="EndOfMessage outside"):
        client.send(EndOfMessage())
    assert client.send(MessageData(b"c\r\n")) == b"c\r\n"  # BDAT bytes go as they are
    assert client.send(Bdat(size=3, last=True)) == b"BDAT 3 LAST\r\n"
    assert client.send(MessageData(b"\n.\n")) == b"\n.\n"
    replies = events(client, b"250 ok\r\n250 ok\r\n250 5 octets\r\n250 2.0.0 8 octets\r\n")
    assert len(replies) == 4
    assert state_of(client) is READY
    assert pending_of(client) == ()


def test_client_bdat_failure_ends_the_transaction() -> None:
    client = client_ready()
    for e in (MailFrom(sender="a@example.net"), RcptTo(recipient="b@example.org"), Bdat(size=0)):
        client.send(e)
    events(client, b"250 ok\r\n250 ok\r\n552 5.3.4 too big\r\n")
    assert state_of(client) is READY
    with pytest.raises(LocalProtocolError, match="not allowed now"):
        client.send(Bdat(size=0, last=True))


# --- client: replies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reply"),
    [
        (b"250 OK\r\n", Reply(code=250, lines=("OK",))),
        (b"250\r\n", Reply(code=250, lines=("",))),
        (b"250 \r\n", Reply(code=250, lines=("",))),
        (b"250 2.1.0 Ok\r\n", Reply(code=250, enhanced="2.1.0", lines=("Ok",))),
        (b"250 2.1.0\r\n", Reply(code=250, enhanced="2.1.0", lines=("",))),
        (
            b"250-2.0.0 first\r\n250-2.0.0 second\r\n250 2.0.0 third\r\n",
            Reply(code=250, enhanced="2.0.0", lines=("first", "second", "third")),
        ),
        (b"250-first\r\n250-\r\n250 last\r\n", Reply(code=250, lines=("first", "", "last"))),
        # A code that does not fit the reply's class is text.
        (b"250 5.1.1 odd\r\n", Reply(code=250, lines=("5.1.1 odd",))),
        (b"250 2.1.0x\r\n", Reply(code=250, lines=("2.1.0x",))),
        (b"250 caf\xc3\xa9\r\n", Reply(code=250, lines=("café",))),
    ],
)
def test_client_parses_replies(data: bytes, reply: Reply) -> None:
    client = client_ready()
    client.send(Noop())
    for i in range(len(data) - 1):
        client.receive_data(data[i : i + 1])
        assert client.next_event() is NEED_DATA
    assert one(client, data[-1:]) == reply


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"hello\r\n", "not an SMTP reply"),
        (b"25 OK\r\n", "not an SMTP reply"),
        (b"600 OK\r\n", "not an SMTP reply"),
        (b"250_OK\r\n", "not an SMTP reply"),
        (b"250-a\r\n251 b\r\n", "code changed"),
        (b"354 go ahead\r\n", "does not answer"),
        (b"334 VXNlcg==\r\n", "334 outside of AUTH"),
        (b"250 ok\r\n250 again\r\n", "no command pending"),
        (b"250 " + b"x" * 20000 + b"\r\n", "too long"),
        (b"250-x\r\n" * 1001 + b"250 x\r\n", "too many lines"),
    ],
)
def test_client_malformed_replies(data: bytes, match: str) -> None:
    client = client_ready()
    client.send(Noop())
    client.receive_data(data)
    with pytest.raises(RemoteProtocolError, match=match):
        events(client)
    assert state_of(client) is ERROR
    with pytest.raises(LocalProtocolError, match="after a protocol error"):
        client.next_event()
    with pytest.raises(LocalProtocolError, match="after a protocol error"):
        client.send(Noop())


def test_client_reply_to_data_must_be_354() -> None:
    client = client_ready()
    for e in (MailFrom(sender="a@example.net"), RcptTo(recipient="b@example.org"), Data()):
        client.send(e)
    client.receive_data(b"250 ok\r\n250 ok\r\n250 ok\r\n")
    with pytest.raises(RemoteProtocolError, match="does not answer"):
        events(client)


def test_client_challenge_must_be_base64() -> None:
    client = client_ready()
    client.send(Auth(mechanism="PLAIN"))
    client.receive_data(b"334 *not base64*\r\n")
    with pytest.raises(RemoteProtocolError, match="not base64"):
        client.next_event()


def test_client_config_limits() -> None:
    client = client_greeted(config=ClientConfig(max_reply_line=100, max_reply_lines=2))
    client.send(Ehlo(domain="c.example"))
    client.receive_data(b"250-a\r\n250-b\r\n250 c\r\n")
    with pytest.raises(RemoteProtocolError, match="too many lines"):
        client.next_event()


def test_unsolicited_421() -> None:
    client = client_ready()
    assert one(client, b"421 4.3.2 Shutting down\r\n") == Reply(
        code=421, enhanced="4.3.2", lines=("Shutting down",)
    )
    assert state_of(client) is CLOSED
    assert pending_of(client) == ()


def test_421_answers_whatever_is_pending() -> None:
    client = client_ready()
    client.send(MailFrom(sender="a@example.net"))
    client.send(RcptTo(recipient="b@example.org"))
    assert one(client, b"421 4.4.2 Timeout\r\n") == Reply(
        code=421, enhanced="4.4.2", lines=("Timeout",)
    )
    assert state_of(client) is CLOSED
    assert pending_of(client) == ()


def test_421_during_a_body_stops_it() -> None:
    # Bug fixed: after a 421 the client kept producing body bytes for a closed session.
    client = client_in_data()
    client.send(MessageData(b"part one\r\n"))
    one(client, b"421 4.3.0 going away\r\n")
    assert state_of(client) is CLOSED
    with pytest.raises(LocalProtocolError, match="closed"):
        client.send(MessageData(b"part two\r\n"))
    with pytest.raises(LocalProtocolError, match="closed"):
        client.send(EndOfMessage())


def test_421_greeting() -> None:
    client = ClientConnection()
    one(client, b"421 mx.example.org busy\r\n")
    assert state_of(client) is CLOSED


def test_client_eof() -> None:
    client = client_ready()
    client.send(Noop())
    client.receive_data(b"250-partial\r\n")
    client.receive_data(b"")
    assert client.next_event() == ConnectionClosed()
    assert state_of(client) is CLOSED
    with pytest.raises(LocalProtocolError, match="after end of file"):
        client.receive_data(b"250 late\r\n")


def test_errors_are_protocol_errors() -> None:
    with pytest.raises(TypeError):
        ProtocolError("abstract")
    assert issubclass(RemoteProtocolError, ProtocolError)


# --- pairs: our client against our server --------------------------------------------------


def greet(client: ClientConnection, server: ServerConnection) -> None:
    client.receive_data(server.send(Reply(code=220, lines="mx.example.org ESMTP ready")))
    assert one(client) == Reply(code=220, lines=("mx.example.org ESMTP ready",))


def test_pair_whole_smtp_session() -> None:
    exchange = Exchange()
    client, server = ClientConnection(), ServerConnection()
    greet(client, server)

    s, c = exchange(client, server, Ehlo(domain="client.example.net"))
    assert s == [Ehlo(domain="client.example.net")]
    assert len(c) == 1
    assert isinstance(c[0], Reply)
    assert c[0].code == 250
    assert client.extensions == server.extensions
    assert client.extensions is not None
    assert "PIPELINING" in client.extensions

    s, c = exchange(client, server, StartTLS())
    assert s == [StartTLS()]
    assert c == [Reply(code=220, enhanced="2.0.0", lines=("Ready to start TLS",))]
    assert state_of(server) is GREETED  # the obliging server started TLS already
    client.start_tls()
    assert state_of(client) is state_of(server) is GREETED

    s, c = exchange(client, server, Ehlo(domain="client.example.net"))
    assert s == [Ehlo(domain="client.example.net")]
    ir = PlainClient("user", "pencil").initial_response()
    s, c = exchange(client, server, Auth(mechanism="PLAIN", initial_response=ir))
    assert s == [Auth(mechanism="PLAIN", initial_response=b"\x00user\x00pencil")]
    assert c == [Reply(code=235, enhanced="2.7.0", lines=("Authenticated",))]
    assert client.session.authenticated
    assert server.session.authenticated

    envelope: list[SMTPEvent] = [
        MailFrom(sender="user@example.net", size=200, body="8BITMIME", ret="HDRS", envid="q1"),
        RcptTo(recipient="bob@example.org", notify=frozenset({"FAILURE"})),
        RcptTo(recipient="carol@example.org"),
        Data(),
    ]
    s, c = exchange(client, server, *envelope)
    assert s == envelope
    assert [r.code for r in c if isinstance(r, Reply)] == [250, 250, 250, 354]
    assert state_of(client) is state_of(server) is DATA

    body = [MessageData(b"Subject: dots\n\n.one\r\n"), MessageData(b"..two\r"), MessageData(b"\n.")]
    s, c = exchange(client, server, *body, EndOfMessage())
    assert merged(s) == [
        MessageData(b"Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\n"),
        EndOfMessage(),
    ]
    assert c == [Reply(code=250, enhanced="2.0.0", lines=("OK",))]

    chunks: list[SMTPEvent] = [
        MailFrom(sender="user@example.net", body="BINARYMIME"),
        RcptTo(recipient="bob@example.org"),
        Bdat(size=4),
        MessageData(b"\x00\r\n."),
        Bdat(size=3, last=True),
        MessageData(b"\n.\n"),
    ]
    s, c = exchange(client, server, *chunks)
    assert merged(s) == [
        chunks[0],
        chunks[1],
        Bdat(size=4),
        MessageData(b"\x00\r\n."),
        EndOfChunk(),
        Bdat(size=3, last=True),
        MessageData(b"\n.\n"),
        EndOfMessage(),
    ]
    assert [r.code for r in c if isinstance(r, Reply)] == [250, 250, 250, 250]

    others: list[SMTPEvent] = [Rset(), Vrfy(argument="bob"), Help(argument="DATA")]
    s, c = exchange(client, server, *others[:1])
    assert s == others[:1]
    s, c = exchange(client, server, others[1])
    assert s == [others[1]]
    assert isinstance(c[0], Reply)
    assert c[0].code == 252
    s, c = exchange(client, server, others[2], Noop())
    assert s == [others[2], Noop()]
    assert [r.code for r in c if isinstance(r, Reply)] == [214, 250]

    s, c = exchange(client, server, Quit())
    assert s == [Quit(), ConnectionClosed()]
    assert c == [Reply(code=221, enhanced="2.0.0", lines=("OK",))]
    assert state_of(client) is state_of(server) is CLOSED


def test_pair_refusals_travel_back() -> None:
    exchange = Exchange()
    client, server = ClientConnection(), ServerConnection(ServerConfig(max_recipients=1))
    greet(client, server)
    exchange(client, server, Ehlo(domain="client.example.net"))
    s, c = exchange(
        client,
        server,
        MailFrom(sender="a@example.net"),
        RcptTo(recipient="b@example.org"),
        RcptTo(recipient="c@example.org"),
        Data(),
    )
    assert [type(e) for e in s] == [MailFrom, RcptTo, CommandRejected, Data]
    assert [(r.code, r.enhanced) for r in c if isinstance(r, Reply)] == [
        (250, "2.0.0"),
        (250, "2.0.0"),
        (452, "4.5.3"),
        (354, None),
    ]
    s, c = exchange(client, server, MessageData(b"x" * 2000), EndOfMessage())
    assert isinstance(s[-1], MessageRejected)
    assert c == [s[-1].reply]
    assert state_of(client) is state_of(server) is READY


def test_pair_auth_login_and_cancel() -> None:
    exchange = Exchange()
    client, server = ClientConnection(), ServerConnection(ServerConfig(tls=True))
    greet(client, server)
    exchange(client, server, Ehlo(domain="client.example.net"))
    s, c = exchange(client, server, Auth(mechanism="LOGIN"))
    assert s == [Auth(mechanism="LOGIN")]
    assert c == [AuthChallenge(data=b"Username:")]
    s, c = exchange(client, server, AuthResponse(data=b"user"))
    assert c == [AuthChallenge(data=b"Password:")]
    s, c = exchange(client, server, AuthCancel())
    assert s == [AuthCancel()]
    assert c == [Reply(code=501, enhanced="5.0.0", lines=("AUTH cancelled",))]
    s, c = exchange(client, server, Auth(mechanism="PLAIN"))
    assert c == [AuthChallenge(data=b"")]
    s, c = exchange(client, server, AuthResponse(data=b"\x00user\x00pencil"))
    assert c == [Reply(code=235, enhanced="2.7.0", lines=("Authenticated",))]


def test_responder_answers_rejections() -> None:
    auto_reply = Responder()
    server = greeted()
    event = one(server, b"MAIL FROM:<a@example.net>\r\n")
    assert isinstance(event, CommandRejected)
    assert auto_reply(server, event) == b"503 5.5.1 Send EHLO first\r\n"
    assert server.replies_owed == 0
