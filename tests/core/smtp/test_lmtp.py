"""LMTP (RFC 2033): LHLO instead of EHLO, and one reply per accepted recipient after the
message, for DATA and for BDAT LAST, on both sides and in pairs."""

from __future__ import annotations

import pytest
from smtp_helpers import EXTENSIONS, Exchange, events, pending_of, state_of

from mailproto import PAUSED, LocalProtocolError
from mailproto.smtp import (
    CLOSED,
    DATA,
    GREETED,
    RCPT,
    READY,
    Bdat,
    ClientConnection,
    CommandRejected,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfChunk,
    EndOfMessage,
    Helo,
    Lhlo,
    MailFrom,
    MessageData,
    MessageRejected,
    Noop,
    Quit,
    RcptTo,
    Reply,
    ServerConfig,
    ServerConnection,
    SMTPEvent,
)

# What the obliging server of helpers.py answers to LHLO.
LHLO_REPLY_AUTO = Reply(code=250, lines=("mx.example.org", *EXTENSIONS))
LHLO_REPLY = Reply(code=250, lines=("mda.example.org", "PIPELINING", "CHUNKING", "8BITMIME"))


def reply(code: int, text: str = "OK") -> Reply:
    return Reply(code=code, lines=text)


def lmtp_server(config: ServerConfig | None = None, recipients: int = 2) -> ServerConnection:
    """An LMTP server past LHLO and MAIL, with ``recipients`` accepted and one refused."""
    server = ServerConnection(config, lmtp=True)
    assert server.lmtp
    server.send(reply(220, "mda.example.org LMTP"))
    assert events(server, b"LHLO mx.example.org\r\n") == [Lhlo(domain="mx.example.org")]
    server.send(LHLO_REPLY)
    events(server, b"MAIL FROM:<alice@example.net>\r\n")
    server.send(reply(250))
    for i in range(recipients):
        events(server, f"RCPT TO:<r{i}@example.org>\r\n".encode())
        server.send(reply(250))
    events(server, b"RCPT TO:<nobody@example.org>\r\n")
    server.send(reply(550, "No such user"))
    assert state_of(server) is RCPT
    return server


def lmtp_client() -> ClientConnection:
    client = ClientConnection(lmtp=True)
    assert client.lmtp
    events(client, b"220 mda.example.org LMTP\r\n")
    client.send(Lhlo(domain="mx.example.org"))
    events(client, b"250-mda.example.org\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
    assert state_of(client) is READY
    return client


# --- hello ------------------------------------------------------------------------------


@pytest.mark.parametrize("line", [b"EHLO mx.example.org", b"HELO mx.example.org"])
def test_lmtp_server_refuses_ehlo_and_helo(line: bytes) -> None:
    server = ServerConnection(lmtp=True)
    server.send(reply(220))
    (event,) = events(server, line + b"\r\n")
    assert isinstance(event, CommandRejected)
    assert (event.reply.code, event.reply.enhanced) == (500, "5.5.1")
    assert event.reply.lines == ("This is LMTP: use LHLO",)
    server.send(event.reply)
    (event,) = events(server, b"MAIL FROM:<a@example.net>\r\n")
    assert isinstance(event, CommandRejected)
    assert (event.reply.code, event.reply.lines) == (503, ("Send LHLO first",))
    server.send(event.reply)
    assert state_of(server) is GREETED


def test_lmtp_client_refuses_ehlo_and_helo() -> None:
    client = ClientConnection(lmtp=True)
    events(client, b"220 mda.example.org LMTP\r\n")
    for event in (Ehlo(domain="mx.example.org"), Helo(domain="mx.example.org")):
        with pytest.raises(LocalProtocolError, match="not allowed now"):
            client.send(event)
    assert client.send(Lhlo(domain="mx.example.org")) == b"LHLO mx.example.org\r\n"


def test_smtp_client_refuses_lhlo() -> None:
    client = ClientConnection()
    events(client, b"220 mx.example.org ESMTP\r\n")
    with pytest.raises(LocalProtocolError, match="not allowed now"):
        client.send(Lhlo(domain="c.example"))


# --- server: replies after the message ----------------------------------------------------


def test_server_owes_one_reply_per_recipient_after_data() -> None:
    server = lmtp_server(recipients=3)
    assert events(server, b"DATA\r\n") == [Data()]
    server.send(reply(354))
    assert state_of(server) is DATA
    got = events(server, b"Hello\r\n.\r\nNOOP\r\n")
    assert got == [MessageData(b"Hello\r\n"), EndOfMessage()]
    for owed in (3, 2, 1):
        assert server.replies_owed == owed
        assert server.next_event() is PAUSED  # NOOP waits for every reply
        server.send(reply(250 if owed != 2 else 452, "per recipient"))
    assert server.replies_owed == 0
    assert state_of(server) is READY
    assert events(server) == [Noop()]


def test_server_owes_one_reply_per_recipient_after_bdat_last() -> None:
    server = lmtp_server(recipients=2)
    got = events(server, b"BDAT 3\r\nabcBDAT 2 LAST\r\nde")
    assert got == [Bdat(size=3), MessageData(b"abc"), EndOfChunk()]
    assert server.replies_owed == 1  # a chunk that is not the last: one reply
    server.send(reply(250))
    assert events(server) == [Bdat(size=2, last=True), MessageData(b"de"), EndOfMessage()]
    assert server.replies_owed == 2
    server.send(reply(250))
    server.send(reply(250))
    assert state_of(server) is READY
    with pytest.raises(LocalProtocolError, match="no command"):
        server.send(reply(250))


def test_server_refused_message_still_owes_every_recipient_a_reply() -> None:
    # Bug fixed: a message refused by the core (bare LF, too long, too large) took one
    # reply in LMTP, leaving a client that counts recipients waiting for the rest.
    server = lmtp_server(recipients=2)
    events(server, b"DATA\r\n")
    server.send(reply(354))
    got = events(server, b"bare\nLF\r\n.\r\n")
    assert isinstance(got[-1], MessageRejected)
    assert server.replies_owed == 2
    server.send(got[-1].reply)
    assert server.replies_owed == 1
    server.send(got[-1].reply)
    assert state_of(server) is READY


def test_server_too_large_bdat_last_owes_every_recipient_a_reply() -> None:
    server = lmtp_server(ServerConfig(max_message_size=10), recipients=3)
    got = events(server, b"BDAT 11 LAST\r\n" + b"x" * 11)
    assert len(got) == 1
    assert isinstance(got[0], MessageRejected)
    assert (got[0].reply.code, got[0].reply.enhanced) == (552, "5.3.4")
    assert server.replies_owed == 3
    for _ in range(3):
        server.send(got[0].reply)
    assert state_of(server) is READY


def test_server_too_large_bdat_chunk_owes_one_reply() -> None:
    server = lmtp_server(ServerConfig(max_message_size=10), recipients=3)
    got = events(server, b"BDAT 11\r\n" + b"x" * 11)
    assert len(got) == 1
    assert isinstance(got[0], MessageRejected)
    assert server.replies_owed == 1
    server.send(got[0].reply)
    assert state_of(server) is READY


def test_per_recipient_failures_are_not_client_errors() -> None:
    # Bug fixed: each refused recipient after the body counted as an error in a row, so
    # delivering to many full mailboxes ended the session with 421.
    server = lmtp_server(ServerConfig(max_errors=2), recipients=5)
    events(server, b"DATA\r\n")
    server.send(reply(354))
    events(server, b"x\r\n.\r\n")
    while server.replies_owed:
        server.send(Reply(code=452, enhanced="4.2.2", lines="Mailbox full"))
    assert events(server, b"NOOP\r\n") == [Noop()]


def test_rejected_bdat_takes_one_reply() -> None:
    server = lmtp_server(recipients=2)
    events(server, b"DATA\r\n")
    server.send(reply(354))
    events(server, b".\r\n")
    server.send(reply(250))
    server.send(reply(250))
    (event,) = events(server, b"BDAT 2 LAST\r\nxy")
    assert isinstance(event, CommandRejected)
    assert event.command == b"BDAT 2 LAST"
    assert server.replies_owed == 1


# --- client: counting the replies ---------------------------------------------------------


def test_client_expects_one_reply_per_accepted_recipient_after_data() -> None:
    client = lmtp_client()
    for event in (
        MailFrom(sender="alice@example.net"),
        RcptTo(recipient="a@example.org"),
        RcptTo(recipient="nobody@example.org"),
        RcptTo(recipient="b@example.org"),
        Data(),
    ):
        client.send(event)
    got = events(client, b"250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n")
    assert [r.code for r in got if isinstance(r, Reply)] == [250, 250, 550, 250, 354]
    client.send(MessageData(b"Hi\r\n"))
    client.send(EndOfMessage())
    client.send(Quit())  # pipelined behind the dot
    assert events(client, b"250 2.0.0 <a@example.org> delivered\r\n") == [
        Reply(code=250, enhanced="2.0.0", lines=("<a@example.org> delivered",))
    ]
    assert pending_of(client) == (EndOfMessage(), Quit())
    assert state_of(client) is DATA
    got = events(client, b"452 4.2.2 <b@example.org> full\r\n221 bye\r\n")
    assert [r.code for r in got if isinstance(r, Reply)] == [452, 221]
    assert state_of(client) is CLOSED
    assert pending_of(client) == ()


def test_client_counts_recipients_answered_after_a_pipelined_bdat_last() -> None:
    client = lmtp_client()
    sent = b"".join(
        client.send(e)
        for e in (
            MailFrom(sender="alice@example.net"),
            RcptTo(recipient="a@example.org"),
            RcptTo(recipient="b@example.org"),
            RcptTo(recipient="c@example.org"),
            Bdat(size=3, last=True),
            MessageData(b"abc"),
            Noop(),
        )
    )
    assert sent.endswith(b"BDAT 3 LAST\r\nabcNOOP\r\n")
    # The RCPT replies come after everything was sent: c is refused, so two replies
    # answer the message, then NOOP's.
    got = events(client, b"250 a\r\n250 b\r\n250 c\r\n550 c\r\n250 a ok\r\n")
    assert len(got) == 5
    assert pending_of(client) == (Bdat(size=3, last=True), Noop())
    got = events(client, b"250 b ok\r\n250 noop\r\n")
    assert [r.lines for r in got if isinstance(r, Reply)] == [("b ok",), ("noop",)]
    assert pending_of(client) == ()
    assert state_of(client) is READY


def test_client_bdat_chunks_take_one_reply_each() -> None:
    client = lmtp_client()
    for e in (
        MailFrom(sender="alice@example.net"),
        RcptTo(recipient="a@example.org"),
        RcptTo(recipient="b@example.org"),
        Bdat(size=1),
        MessageData(b"x"),
        Bdat(size=0, last=True),
    ):
        client.send(e)
    events(client, b"250 ok\r\n250 ok\r\n250 ok\r\n250 chunk\r\n250 a\r\n")
    assert pending_of(client) == (Bdat(size=0, last=True),)
    events(client, b"250 b\r\n")
    assert pending_of(client) == ()
    assert state_of(client) is READY


def test_client_failed_bdat_last_with_no_recipient_takes_one_reply() -> None:
    client = lmtp_client()
    for e in (
        MailFrom(sender="alice@example.net"),
        RcptTo(recipient="a@example.org"),
        Bdat(size=0, last=True),
    ):
        client.send(e)
    got = events(client, b"250 ok\r\n550 no\r\n554 5.5.1 No valid recipients\r\n")
    assert len(got) == 3
    assert pending_of(client) == ()
    assert state_of(client) is READY


def test_client_421_between_recipient_replies() -> None:
    client = lmtp_client()
    for e in (MailFrom(sender="a@example.net"), RcptTo(recipient="b@example.org"), Data()):
        client.send(e)
    events(client, b"250 ok\r\n250 ok\r\n354 go\r\n")
    client.send(EndOfMessage())
    assert events(client, b"421 4.3.0 bye\r\n") == [
        Reply(code=421, enhanced="4.3.0", lines=("bye",))
    ]
    assert state_of(client) is CLOSED


# --- pairs ----------------------------------------------------------------------------------


def start(client: ClientConnection, server: ServerConnection, exchange: Exchange) -> None:
    client.receive_data(server.send(reply(220, "mda.example.org LMTP")))
    events(client)
    s, c = exchange(client, server, Lhlo(domain="mx.example.org"))
    assert s == [Lhlo(domain="mx.example.org")]
    assert c == [LHLO_REPLY_AUTO]
    assert client.extensions == server.extensions


def test_pair_lmtp_session_with_data_and_bdat() -> None:
    exchange = Exchange()
    client, server = ClientConnection(lmtp=True), ServerConnection(lmtp=True)
    start(client, server, exchange)
    envelope: list[SMTPEvent] = [
        MailFrom(sender="alice@example.net"),
        RcptTo(recipient="a@example.org"),
        RcptTo(recipient="b@example.org"),
        Data(),
    ]
    s, c = exchange(client, server, *envelope)
    assert s == envelope
    assert state_of(client) is state_of(server) is DATA
    s, c = exchange(client, server, MessageData(b".dot\nline"), EndOfMessage())
    assert s == [MessageData(b".dot\r\nline\r\n"), EndOfMessage()]
    assert len(c) == 2  # one reply per recipient
    assert state_of(client) is state_of(server) is READY
    s, c = exchange(
        client,
        server,
        MailFrom(sender="alice@example.net"),
        RcptTo(recipient="a@example.org"),
        RcptTo(recipient="b@example.org"),
        RcptTo(recipient="c@example.org"),
        Bdat(size=2),
        MessageData(b"\r\n"),
        Bdat(size=1, last=True),
        MessageData(b"."),
        Quit(),
    )
    assert [type(e) for e in s] == [
        MailFrom,
        RcptTo,
        RcptTo,
        RcptTo,
        Bdat,
        MessageData,
        EndOfChunk,
        Bdat,
        MessageData,
        EndOfMessage,
        Quit,
        ConnectionClosed,
    ]
    # MAIL, 3 RCPT, the chunk, 3 replies to the message, QUIT.
    assert [r.code for r in c if isinstance(r, Reply)] == [250] * 8 + [221]
    assert state_of(client) is state_of(server) is CLOSED


def test_pair_lmtp_refused_message() -> None:
    exchange = Exchange()
    client, server = (
        ClientConnection(lmtp=True),
        ServerConnection(ServerConfig(max_message_size=5), lmtp=True),
    )
    start(client, server, exchange)
    exchange(
        client,
        server,
        MailFrom(sender="alice@example.net"),
        RcptTo(recipient="a@example.org"),
        RcptTo(recipient="b@example.org"),
        Data(),
    )
    s, c = exchange(client, server, MessageData(b"far too long\r\n"), EndOfMessage(), Noop())
    assert isinstance(s[-2], MessageRejected)
    assert s[-1] == Noop()
    assert c == [s[-2].reply, s[-2].reply, Reply(code=250, enhanced="2.0.0", lines=("OK",))]
    assert pending_of(client) == ()
    assert state_of(client) is state_of(server) is READY
