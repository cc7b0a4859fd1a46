"""The server role, byte by byte: reading commands, states, message numbers, responses,
multi-line framing, AUTH, STLS, policies and limits."""

from __future__ import annotations

import base64

import pytest
from pop3_helpers import GREETING, chunks, state

from mailproto import NEED_DATA, PAUSED, LocalProtocolError, RemoteProtocolError
from mailproto.pop3 import (
    AUTHORIZATION,
    CLOSED,
    CONNECTED,
    ERROR,
    TLS_PENDING,
    TRANSACTION,
    UPDATE,
    Apop,
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthResponse,
    Capa,
    CommandRejected,
    ConnectionClosed,
    Dele,
    EndOfResponse,
    Err,
    List,
    Noop,
    Ok,
    Pass,
    POP3Event,
    Quit,
    ResponseData,
    Retr,
    Rset,
    ServerConfig,
    ServerConnection,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
)

DIGEST = "c4c9334bac560ecc979e58001b3e22fb"


def greeted(config: ServerConfig | None = None) -> ServerConnection:
    server = ServerConnection(config or ServerConfig(allow_insecure_auth=True))
    assert state(server) is CONNECTED
    assert server.next_event() is PAUSED  # the greeting is owed first
    assert server.send(Ok(text=GREETING)) == b"+OK " + GREETING.encode() + b"\r\n"
    assert state(server) is AUTHORIZATION
    return server


def command(server: ServerConnection, line: bytes) -> POP3Event:
    """Feed one line; return the one event it gives, checking the server then pauses."""
    server.receive_data(line)
    event = server.next_event()
    assert isinstance(event, POP3Event)
    assert server.next_event() is PAUSED
    return event


def logged_in(count: int = 3, config: ServerConfig | None = None) -> ServerConnection:
    server = greeted(config)
    assert command(server, b"APOP mrose " + DIGEST.encode() + b"\r\n") == Apop(
        name="mrose", digest=DIGEST
    )
    server.open_maildrop(count)
    assert server.send(Ok(text="maildrop ready")) == b"+OK maildrop ready\r\n"
    assert state(server) is TRANSACTION
    return server


def rejected(server: ServerConnection, line: bytes, *, last: bool = False) -> CommandRejected:
    event = command(server, line)
    assert isinstance(event, CommandRejected), event
    code = f"[{event.reply.code}] " if event.reply.code else ""
    assert server.send(event.reply) == f"-ERR {code}{event.reply.text}\r\n".encode()
    if not last:
        assert server.next_event() is NEED_DATA  # the session goes on
    return event


# --- greeting and reading ---------------------------------------------------------------------


def test_greeting_with_apop_timestamp() -> None:
    server = greeted()
    assert server.apop_timestamp == "<1896.697170952@dbc.mtview.ca.us>"
    assert server.next_event() is NEED_DATA


def test_greeting_without_timestamp_and_negative_greeting() -> None:
    server = ServerConnection()
    server.send(Ok(text="ready"))
    assert server.apop_timestamp is None
    server = ServerConnection()
    assert server.send(Err(code="SYS/TEMP", text="busy")) == b"-ERR [SYS/TEMP] busy\r\n"
    assert state(server) is CLOSED
    assert server.next_event() == ConnectionClosed()
    with pytest.raises(LocalProtocolError, match="closed"):
        server.send(Ok())


@pytest.mark.parametrize("how", ["whole", "bytewise", 3])
def test_three_way_reader_check(how: str | int) -> None:
    server = logged_in()
    data = b"RETR 1\r\n"
    pieces = list(chunks(data, how))
    for piece in pieces[:-1]:
        server.receive_data(piece)
        assert server.next_event() is NEED_DATA
    server.receive_data(pieces[-1] + b"DELE 2\r\nNOO")
    assert server.next_event() == Retr(msg=1)
    assert server.next_event() is PAUSED  # trailing bytes wait for our answer
    server.send(Ok())
    server.send(EndOfResponse())
    assert server.next_event() == Dele(msg=2)
    server.send(Ok())
    assert server.next_event() is NEED_DATA  # "NOO" stays in the buffer
    server.receive_data(b"P\r\n")
    assert server.next_event() == Noop()


def test_pipelined_commands_are_answered_in_order() -> None:
    server = logged_in()
    server.receive_data(b"STAT\r\nLIST 1\r\nUIDL\r\nNOOP\r\nQUIT\r\n")
    out = b""
    seen: list[POP3Event] = []
    answers: dict[type[POP3Event], list[POP3Event]] = {
        Stat: [Ok(text="3 300")],
        List: [Ok(text="1 100")],
        Uidl: [Ok(), ResponseData(b"1 a\r\n"), EndOfResponse()],
        Noop: [Ok()],
        Quit: [Ok(text="bye")],
    }
    while True:
        event = server.next_event()
        if event is NEED_DATA or isinstance(event, ConnectionClosed):
            break
        assert isinstance(event, POP3Event)
        seen.append(event)
        assert server.next_event() is PAUSED
        for answer in answers[type(event)]:
            out += server.send(answer)
    assert seen == [Stat(), List(msg=1), Uidl(), Noop(), Quit()]
    assert out == b"+OK 3 300\r\n+OK 1 100\r\n+OK\r\n1 a\r\n.\r\n+OK\r\n+OK bye\r\n"
    assert state(server) is CLOSED


def test_end_of_file() -> None:
    server = greeted()
    server.receive_data(b"USER mro")
    assert server.next_event() is NEED_DATA
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed()
    assert state(server) is CLOSED
    assert server.next_event() == ConnectionClosed()
    with pytest.raises(LocalProtocolError, match="after end of file"):
        server.receive_data(b"x")


def test_end_of_file_waits_for_owed_response() -> None:
    server = logged_in()
    server.receive_data(b"NOOP\r\n")
    server.receive_data(b"")
    assert server.next_event() == Noop()
    assert server.next_event() is PAUSED
    server.send(Ok())
    assert server.next_event() == ConnectionClosed()


# --- states ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [b"STAT", b"LIST", b"LIST 1", b"RETR 1", b"DELE 1", b"NOOP", b"RSET", b"TOP 1 1", b"UIDL"],
)
def test_transaction_commands_need_login(line: bytes) -> None:
    server = greeted()
    event = rejected(server, line + b"\r\n")
    assert event.reply == Err(text="Not authenticated")
    assert event.command == line
    assert state(server) is AUTHORIZATION


@pytest.mark.parametrize(
    "line",
    [
        b"USER mrose",
        b"PASS secret",
        b"APOP mrose " + DIGEST.encode(),
        b"AUTH PLAIN",
        b"AUTH",
        b"STLS",
        b"UTF8",
    ],
)
def test_authorization_commands_refused_in_transaction(line: bytes) -> None:
    server = logged_in()
    event = rejected(server, line + b"\r\n")
    assert event.reply == Err(text="Command not valid in TRANSACTION state")
    assert state(server) is TRANSACTION


def test_pass_must_follow_a_successful_user() -> None:
    server = greeted()
    assert rejected(server, b"PASS secret\r\n").reply == Err(text="Send USER first")
    assert command(server, b"USER nobody\r\n") == User(name="nobody")
    server.send(Err(text="no such mailbox"))
    assert rejected(server, b"PASS secret\r\n").reply == Err(text="Send USER first")
    assert command(server, b"USER mrose\r\n") == User(name="mrose")
    server.send(Ok())
    assert command(server, b"PASS secret\r\n") == Pass(password="secret")
    server.send(Err(code="AUTH", text="invalid password"))
    # A failed PASS needs a new USER.
    assert rejected(server, b"PASS secret\r\n").reply == Err(text="Send USER first")


@pytest.mark.parametrize("between", [b"CAPA", b"NOOP", b"USER"])
def test_pass_only_immediately_after_user(between: bytes) -> None:
    # RFC 1939 section 7: PASS "may only be given ... immediately after a successful USER
    # command". Whatever comes in between, answered or refused, breaks the pair.
    server = greeted()
    assert command(server, b"USER mrose\r\n") == User(name="mrose")
    server.send(Ok())
    event = command(server, between + b"\r\n")
    if isinstance(event, Capa):
        server.send(Ok())
        server.send(EndOfResponse())
    else:
        assert isinstance(event, CommandRejected)
        server.send(event.reply)
    assert rejected(server, b"PASS secret\r\n").reply == Err(text="Send USER first")


def test_quit_in_authorization_closes_without_update() -> None:
    server = greeted()
    assert command(server, b"QUIT\r\n") == Quit()
    assert state(server) is AUTHORIZATION
    assert server.send(Ok(text="bye")) == b"+OK bye\r\n"
    assert state(server) is CLOSED
    assert server.next_event() == ConnectionClosed()


@pytest.mark.parametrize("answer", [Ok(text="bye"), Err(text="some deleted messages not removed")])
def test_quit_in_transaction_is_update(answer: Ok | Err) -> None:
    server = logged_in()
    command(server, b"DELE 2\r\n")
    server.send(Ok())
    assert command(server, b"QUIT\r\n") == Quit()
    assert state(server) is UPDATE
    assert server.deleted == frozenset({2})
    server.send(answer)
    assert state(server) is CLOSED
    assert server.next_event() == ConnectionClosed()
    with pytest.raises(LocalProtocolError, match="closed"):
        server.send(Ok())


def test_responses_need_a_command() -> None:
    server = logged_in()
    with pytest.raises(LocalProtocolError, match="no command"):
        server.send(Ok())
    for event in (Stat(), ResponseData(b"x"), EndOfResponse(), ConnectionClosed()):
        with pytest.raises(LocalProtocolError):
            server.send(event)


def test_status_line_limit() -> None:
    # RFC 1939 section 3: a response is at most 512 octets with its CRLF.
    server = ServerConnection()
    with pytest.raises(LocalProtocolError, match="512"):
        server.send(Ok(text="x" * 507))
    assert server.send(Ok(text="x" * 506)) == b"+OK " + b"x" * 506 + b"\r\n"
    command(server, b"NOOP\r\n")
    with pytest.raises(LocalProtocolError, match="512"):
        server.send(Err(code="SYS/TEMP", text="y" * 500))
    # Nothing was sent: the rejection is still owed.
    assert server.send(Err(text="Not authenticated")) == b"-ERR Not authenticated\r\n"


def test_rejected_command_gets_err() -> None:
    server = greeted()
    event = command(server, b"BOGUS\r\n")
    assert isinstance(event, CommandRejected)
    with pytest.raises(LocalProtocolError, match="-ERR"):
        server.send(Ok())
    assert server.send(Err(code="SYS/PERM", text="what?")) == b"-ERR [SYS/PERM] what?\r\n"


def test_rejections_never_log_secrets() -> None:
    server = greeted(ServerConfig())
    assert rejected(server, b"PASS hunter2\r\n").command == b"PASS"
    assert rejected(server, b"pass hunter2\r\n").command == b"PASS"
    assert rejected(server, b"AUTH PLAIN aHVudGVyMg\r\n").command == b"AUTH"
    assert rejected(server, b"APOP me hunter2\r\n").command == b"APOP"
    assert rejected(server, b"USER " + b"x" * 100 + b"\r\n").command == b"USER " + b"x" * 75


# --- syntax errors through the server -------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"USER", "Wrong number of arguments for USER"),
        (b"PASS", "Syntax: PASS password"),
        (b"APOP mrose nothex", "Syntax: APOP name digest"),
        (b"AUTH PLAIN not-base64", "Invalid base64 data"),
        (b"QUIT now", "QUIT takes no argument"),
        (b"STAT x", "STAT takes no argument"),
        (b"LIST a", "Invalid message number: a"),
        (b"RETR", "Wrong number of arguments for RETR"),
        (b"DELE 0", "Invalid message number: 0"),
        (b"NOOP 1", "NOOP takes no argument"),
        (b"RSET 1", "RSET takes no argument"),
        (b"TOP 1", "Wrong number of arguments for TOP"),
        (b"TOP 1 x", "Invalid line count: x"),
        (b"UIDL 1 2", "Wrong number of arguments for UIDL"),
        (b"CAPA 1", "CAPA takes no argument"),
        (b"STLS 1", "STLS takes no argument"),
        (b"UTF8 1", "UTF8 takes no argument"),
        (b"XYZZY", "Unknown command"),
        (b"", "Unknown command"),
        (b"USER a\x00b", "Invalid characters in command"),
        (b"USER a\nb", "Invalid characters in command"),
        (b"\xc3\xa9", "Non-ASCII command: send UTF8 first"),
        (b"\xff", "Invalid characters in command"),
    ],
)
@pytest.mark.parametrize("logged", [False, True])
def test_syntax_errors_yield_err_and_the_session_goes_on(
    line: bytes, text: str, logged: bool
) -> None:
    server = logged_in() if logged else greeted()
    before = state(server)
    assert rejected(server, line + b"\r\n").reply == Err(text=text)
    assert state(server) is before
    assert command(server, b"QUIT\r\n") == Quit()


# --- message numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"RETR 4", "No such message: 4"),
        (b"LIST 4", "No such message: 4"),
        (b"UIDL 4", "No such message: 4"),
        (b"DELE 4", "No such message: 4"),
        (b"TOP 4 0", "No such message: 4"),
        (b"RETR 9999999999", "No such message: 9999999999"),
        (b"RETR 0", "Invalid message number: 0"),
        (b"RETR x", "Invalid message number: x"),
        (b"RETR 10000000000", "Invalid message number: 10000000000"),
        (b"RETR 2", "Message 2 already deleted"),
        (b"LIST 2", "Message 2 already deleted"),
        (b"UIDL 2", "Message 2 already deleted"),
        (b"DELE 2", "Message 2 already deleted"),
        (b"TOP 2 10", "Message 2 already deleted"),
    ],
)
def test_message_numbers(line: bytes, text: str) -> None:
    server = logged_in(3)
    assert command(server, b"DELE 2\r\n") == Dele(msg=2)
    server.send(Ok(text="message 2 deleted"))
    assert rejected(server, line + b"\r\n").reply == Err(text=text)


def test_valid_message_numbers_and_rset() -> None:
    server = logged_in(3)
    for line, event in [
        (b"RETR 3", Retr(msg=3)),
        (b"TOP 1 5", Top(msg=1, lines=5)),
        (b"LIST 2", List(msg=2)),
        (b"UIDL 1", Uidl(msg=1)),
    ]:
        assert command(server, line + b"\r\n") == event
        server.send(Ok())
        if isinstance(event, Retr | Top):
            server.send(EndOfResponse())
    command(server, b"DELE 1\r\n")
    server.send(Ok())
    command(server, b"DELE 3\r\n")
    server.send(Err(code="SYS/TEMP", text="not now"))  # -ERR: 3 is not deleted
    assert server.deleted == frozenset({1})
    assert command(server, b"RSET\r\n") == Rset()
    server.send(Ok())
    assert server.deleted == frozenset()
    assert command(server, b"RETR 1\r\n") == Retr(msg=1)


def test_rset_refused_keeps_deletions() -> None:
    server = logged_in(3)
    command(server, b"DELE 1\r\n")
    server.send(Ok())
    command(server, b"RSET\r\n")
    server.send(Err(text="no"))
    assert server.deleted == frozenset({1})


def test_empty_maildrop() -> None:
    server = logged_in(0)
    assert rejected(server, b"RETR 1\r\n").reply == Err(text="No such message: 1")
    assert command(server, b"LIST\r\n") == List()
    assert server.send(Ok(text="0 messages")) + server.send(EndOfResponse()) == (
        b"+OK 0 messages\r\n.\r\n"
    )


def test_open_maildrop_misuse() -> None:
    server = greeted()
    with pytest.raises(LocalProtocolError, match="login"):
        server.open_maildrop(1)
    command(server, b"AUTH\r\n")
    with pytest.raises(LocalProtocolError, match="login"):
        server.open_maildrop(1)  # a bare AUTH lists mechanisms, it logs nobody in
    server.send(Ok())
    server.send(EndOfResponse())
    command(server, b"APOP mrose " + DIGEST.encode() + b"\r\n")
    with pytest.raises(LocalProtocolError, match=">= 0"):
        server.open_maildrop(-1)
    with pytest.raises(LocalProtocolError, match="open_maildrop"):
        server.send(Ok())
    assert server.send(Err(code="IN-USE", text="locked")) == b"-ERR [IN-USE] locked\r\n"
    assert state(server) is AUTHORIZATION


def test_login_failure_after_open_maildrop_stays_in_authorization() -> None:
    server = greeted()
    command(server, b"APOP mrose " + DIGEST.encode() + b"\r\n")
    server.open_maildrop(2)
    server.send(Err(code="LOGIN-DELAY", text="wait"))
    assert state(server) is AUTHORIZATION
    # The next login must open the maildrop again.
    command(server, b"APOP mrose " + DIGEST.encode() + b"\r\n")
    with pytest.raises(LocalProtocolError, match="open_maildrop"):
        server.send(Ok())


# --- multi-line responses ---------------------------------------------------------------------


def multiline(server: ServerConnection, line: bytes, body: list[bytes]) -> bytes:
    command(server, line)
    out = server.send(Ok())
    assert server.next_event() is PAUSED  # the body is still owed
    for piece in body:
        out += server.send(ResponseData(piece))
    out += server.send(EndOfResponse())
    return out


@pytest.mark.parametrize(
    ("body", "wire"),
    [
        ([b""], b".\r\n"),
        ([], b".\r\n"),
        ([b"a\r\nb\r\n"], b"a\r\nb\r\n.\r\n"),
        ([b".\r\n"], b"..\r\n.\r\n"),
        ([b"..x\r\n.y\r\n"], b"...x\r\n..y\r\n.\r\n"),
        ([b"a\r\n", b".", b"\r\n"], b"a\r\n..\r\n.\r\n"),
        ([b"no final newline"], b"no final newline\r\n.\r\n"),
        ([b"bare\nlf\n.dot\n"], b"bare\r\nlf\r\n..dot\r\n.\r\n"),
        ([b"bare\rcr"], b"bare\r\ncr\r\n.\r\n"),
        ([b"a\r", b"\n.b\r"], b"a\r\n..b\r\n.\r\n"),
        ([b"a\r", b".b"], b"a\r\n..b\r\n.\r\n"),
        ([b"\r\n.\r\n"], b"\r\n..\r\n.\r\n"),
    ],
)
def test_multiline_stuffing(body: list[bytes], wire: bytes) -> None:
    server = logged_in()
    assert multiline(server, b"RETR 1\r\n", body) == b"+OK\r\n" + wire
    assert server.next_event() is NEED_DATA


@pytest.mark.parametrize(
    ("line", "multi"),
    [
        (b"LIST", True),
        (b"LIST 1", False),
        (b"UIDL", True),
        (b"UIDL 1", False),
        (b"RETR 1", True),
        (b"TOP 1 0", True),
        (b"CAPA", True),
        (b"STAT", False),
        (b"NOOP", False),
        (b"DELE 1", False),
    ],
)
def test_which_responses_are_multiline(line: bytes, multi: bool) -> None:
    server = logged_in()
    command(server, line + b"\r\n")
    server.send(Ok())
    if multi:
        assert server.next_event() is PAUSED
        with pytest.raises(LocalProtocolError, match="finish"):
            server.send(Ok())
        assert server.send(EndOfResponse()) == b".\r\n"
    else:
        with pytest.raises(LocalProtocolError):
            server.send(ResponseData(b"x"))
    assert server.next_event() is NEED_DATA


def test_err_to_a_multiline_command_has_no_body() -> None:
    server = logged_in()
    command(server, b"RETR 1\r\n")
    assert server.send(Err(code="SYS/TEMP", text="try later")) == b"-ERR [SYS/TEMP] try later\r\n"
    with pytest.raises(LocalProtocolError):
        server.send(EndOfResponse())
    assert server.next_event() is NEED_DATA


# --- AUTH -------------------------------------------------------------------------------------


def test_auth_challenges_and_cancel() -> None:
    server = greeted(ServerConfig())
    assert command(server, b"AUTH CRAM-MD5\r\n") == Auth(mechanism="CRAM-MD5")
    assert server.send(AuthChallenge(data=b"<1.2@x>")) == b"+ PDEuMkB4Pg==\r\n"
    assert server.session.in_auth
    assert command(server, b"*\r\n") == AuthCancel()
    with pytest.raises(LocalProtocolError, match="cancelled"):
        server.send(Ok())
    assert server.send(Err(text="cancelled")) == b"-ERR cancelled\r\n"
    assert not server.session.in_auth
    # A "*" outside of an exchange is just an unknown command.
    assert rejected(server, b"*\r\n").reply == Err(text="Unknown command")


def test_auth_exchange_to_success() -> None:
    server = greeted(ServerConfig())
    command(server, b"AUTH SCRAM-SHA-256\r\n")
    server.send(AuthChallenge(data=b""))
    assert command(server, b"bj0=\r\n") == AuthResponse(data=b"n=")
    assert server.send(AuthChallenge(data=b"r=x")) == b"+ cj14\r\n"
    assert command(server, b"\r\n") == AuthResponse(data=b"")
    server.open_maildrop(1)
    assert server.send(Ok(text="welcome")) == b"+OK welcome\r\n"
    assert state(server) is TRANSACTION
    assert not server.session.in_auth


def test_auth_bad_base64_ends_the_exchange() -> None:
    server = greeted()
    command(server, b"AUTH LOGIN\r\n")
    server.send(AuthChallenge(data=b"Username:"))
    event = rejected(server, b"not base64!\r\n")
    assert event.reply == Err(text="Invalid base64 data")
    assert event.command == b""  # an answer in an exchange may hold a secret: never logged
    assert not server.session.in_auth
    # The next line is a command again.
    assert command(server, b"QUIT\r\n") == Quit()


def test_auth_over_long_answer_ends_the_exchange() -> None:
    server = greeted(ServerConfig(max_auth_line=300, allow_insecure_auth=True))
    command(server, b"AUTH LOGIN\r\n")
    server.send(AuthChallenge(data=b"Username:"))
    event = rejected(server, b"QUFB" * 100 + b"\r\n")
    assert event.reply == Err(text="Line too long")
    assert not server.session.in_auth
    assert command(server, b"QUIT\r\n") == Quit()


def test_auth_challenge_only_inside_auth() -> None:
    server = greeted(ServerConfig())
    with pytest.raises(LocalProtocolError, match="outside of AUTH"):
        server.send(AuthChallenge(data=b""))
    command(server, b"AUTH\r\n")
    with pytest.raises(LocalProtocolError, match="outside of AUTH"):
        server.send(AuthChallenge(data=b""))
    assert server.send(Ok(text="methods")) == b"+OK methods\r\n"
    assert server.send(ResponseData(b"PLAIN\r\nCRAM-MD5\r\n")) == b"PLAIN\r\nCRAM-MD5\r\n"
    assert server.send(EndOfResponse()) == b".\r\n"
    assert state(server) is AUTHORIZATION


def test_auth_with_initial_response_may_exceed_command_limit() -> None:
    server = greeted(ServerConfig(allow_insecure_auth=True))
    response = base64.b64encode(b"\0user\0" + b"p" * 250)
    event = command(server, b"AUTH PLAIN " + response + b"\r\n")
    assert event == Auth(mechanism="PLAIN", initial_response=b"\0user\0" + b"p" * 250)


# --- policy: plaintext passwords ------------------------------------------------------------


@pytest.mark.parametrize(
    "line", [b"USER mrose", b"AUTH PLAIN", b"auth login", b"AUTH PLAIN AHUAcA=="]
)
def test_plaintext_passwords_refused_without_tls(line: bytes) -> None:
    server = greeted(ServerConfig())
    event = rejected(server, line + b"\r\n")
    assert event.reply == Err(code="AUTH", text="Plaintext authentication disallowed without TLS")


def test_pass_refused_without_tls_even_after_user() -> None:
    # USER is refused first, so PASS meets "Send USER first"; both are -ERR.
    server = greeted(ServerConfig())
    rejected(server, b"USER mrose\r\n")
    assert rejected(server, b"PASS x\r\n").reply == Err(text="Send USER first")


@pytest.mark.parametrize(
    "line",
    [b"APOP mrose " + DIGEST.encode(), b"AUTH CRAM-MD5", b"AUTH SCRAM-SHA-256", b"AUTH", b"CAPA"],
)
def test_no_plaintext_secret_needs_no_tls(line: bytes) -> None:
    server = greeted(ServerConfig())
    assert not isinstance(command(server, line + b"\r\n"), CommandRejected)


@pytest.mark.parametrize("config", [ServerConfig(allow_insecure_auth=True), ServerConfig(tls=True)])
def test_plaintext_passwords_allowed(config: ServerConfig) -> None:
    server = greeted(config)
    assert command(server, b"USER mrose\r\n") == User(name="mrose")
    server.send(Ok())
    assert command(server, b"PASS tanstaaf\r\n") == Pass(password="tanstaaf")


# --- STLS -----------------------------------------------------------------------------------


def test_stls_restarts_the_session() -> None:
    server = greeted(ServerConfig())
    command(server, b"UTF8\r\n")
    server.send(Ok())
    assert server.session.utf8
    assert command(server, b"STLS\r\n") == Stls()
    assert server.send(Ok(text="Begin TLS negotiation")) == b"+OK Begin TLS negotiation\r\n"
    assert state(server) is TLS_PENDING
    assert server.next_event() is PAUSED
    server.start_tls()
    assert state(server) is AUTHORIZATION
    assert server.session.tls
    # RFC 2595 section 4: what the client said before TLS is forgotten, UTF8 mode too.
    assert not server.session.utf8
    assert rejected(server, "USER jürgen\r\n".encode()).reply == Err(
        text="Non-ASCII command: send UTF8 first"
    )
    assert rejected(server, b"STLS\r\n").reply == Err(text="TLS is already active")
    assert command(server, b"USER mrose\r\n") == User(name="mrose")  # now allowed


def test_stls_forgets_user() -> None:
    server = greeted(ServerConfig(allow_insecure_auth=True))
    command(server, b"USER mrose\r\n")
    server.send(Ok())
    command(server, b"STLS\r\n")
    server.send(Ok())
    server.start_tls()
    assert rejected(server, b"PASS tanstaaf\r\n").reply == Err(text="Send USER first")


def test_stls_refused() -> None:
    server = greeted()
    command(server, b"STLS\r\n")
    server.send(Err(text="no TLS here"))
    assert state(server) is AUTHORIZATION
    with pytest.raises(LocalProtocolError, match="start_tls"):
        server.start_tls()
    assert server.next_event() is NEED_DATA


def test_stls_with_implicit_tls_is_refused() -> None:
    server = greeted(ServerConfig(tls=True))
    assert rejected(server, b"STLS\r\n").reply == Err(text="TLS is already active")


@pytest.mark.parametrize("pipelined", [b"USER mrose\r\n", b"C", b"\r\n"])
def test_stls_plaintext_injection(pipelined: bytes) -> None:
    # Commands sent in plaintext after STLS must not be run after the handshake as if
    # they came through TLS (CVE-2011-0411 and its POP3 cousins).
    server = greeted()
    server.receive_data(b"STLS\r\n" + pipelined)
    assert server.next_event() == Stls()
    server.send(Ok(text="Begin TLS"))
    with pytest.raises(RemoteProtocolError) as info:
        server.start_tls()
    assert info.value.reply_hint == Err(text="Command pipelining after STLS")
    assert state(server) is ERROR
    with pytest.raises(LocalProtocolError):
        server.next_event()
    with pytest.raises(LocalProtocolError, match="only -ERR"):
        server.send(Ok())
    assert server.send(Err(text="Command pipelining after STLS")) == (
        b"-ERR Command pipelining after STLS\r\n"
    )
    assert server.session.state is CLOSED


# --- errors and limits ------------------------------------------------------------------------


def test_too_many_errors_end_the_session() -> None:
    server = greeted(ServerConfig(max_errors=3))
    rejected(server, b"BOGUS\r\n")
    rejected(server, b"BOGUS\r\n")
    rejected(server, b"BOGUS\r\n", last=True)
    # The session ends at once, with no need to wait for another command.
    with pytest.raises(RemoteProtocolError) as info:
        server.next_event()
    hint = info.value.reply_hint
    assert hint == Err(text="Too many errors, closing connection")
    assert state(server) is ERROR
    assert isinstance(hint, Err)
    assert server.send(hint) == b"-ERR Too many errors, closing connection\r\n"
    with pytest.raises(LocalProtocolError):
        server.next_event()


def test_err_answers_count_too_and_ok_resets() -> None:
    server = greeted(ServerConfig(max_errors=3))
    for _ in range(2):
        command(server, b"USER nobody\r\n")
        server.send(Err(code="AUTH", text="no"))
    command(server, b"CAPA\r\n")
    server.send(Ok())
    server.send(EndOfResponse())
    for _ in range(2):
        rejected(server, b"BOGUS\r\n")
    # Two more in a row (four in all, but never three in a row) are still fine.
    assert command(server, b"QUIT\r\n") == Quit()


def test_challenge_resets_the_error_count() -> None:
    server = greeted(ServerConfig(max_errors=2))
    rejected(server, b"BOGUS\r\n")
    command(server, b"AUTH CRAM-MD5\r\n")
    server.send(AuthChallenge(data=b"x"))
    rejected(server, b"?\r\n")  # bad base64: one error
    assert command(server, b"QUIT\r\n") == Quit()


def test_command_line_limit() -> None:
    # RFC 2449 section 4: 255 octets with the CRLF.
    server = greeted()
    longest = b"USER " + b"u" * 248 + b"\r\n"
    assert len(longest) == 255
    assert command(server, longest) == User(name="u" * 248)
    server.send(Err(text="no"))
    event = rejected(server, b"USER " + b"u" * 249 + b"\r\n")
    assert event.reply == Err(text="Line too long")
    assert command(server, b"QUIT\r\n") == Quit()


def test_huge_line_is_dropped_as_it_arrives() -> None:
    server = greeted(ServerConfig(max_auth_line=1000))
    for _ in range(100):
        server.receive_data(b"x" * 1000)
        assert server.next_event() is NEED_DATA
    assert len(server._buf) < 1000  # nothing of the line is kept
    server.receive_data(b"\r\nNOOP\r\n")
    event = server.next_event()
    assert event == CommandRejected(reply=Err(text="Line too long"), command=b"")
    server.send(Err(text="Line too long"))
    assert server.next_event() == CommandRejected(
        reply=Err(text="Not authenticated"), command=b"NOOP"
    )


def test_send_after_protocol_error_closes() -> None:
    server = greeted(ServerConfig(max_errors=1))
    rejected(server, b"X\r\n", last=True)
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    with pytest.raises(LocalProtocolError, match="only -ERR"):
        server.send(ResponseData(b""))


# --- UTF8 (RFC 6856) ------------------------------------------------------------------------


def test_utf8_mode() -> None:
    server = greeted()
    name = "USER jürgen\r\n".encode()
    assert rejected(server, name).reply == Err(text="Non-ASCII command: send UTF8 first")
    assert command(server, b"UTF8\r\n") == Utf8()
    server.send(Err(text="not supported"))
    assert rejected(server, name).reply == Err(text="Non-ASCII command: send UTF8 first")
    command(server, b"UTF8\r\n")
    server.send(Ok(text="UTF8 enabled"))
    assert rejected(server, b"UTF8\r\n").reply == Err(text="UTF8 is already enabled")
    assert command(server, name) == User(name="jürgen")
    server.send(Ok(text="jürgen ok"))
    assert command(server, "PASS pässwörd\r\n".encode()) == Pass(password="pässwörd")
    server.open_maildrop(1)
    assert server.send(Ok(text="bienvenue à jürgen")) == "+OK bienvenue à jürgen\r\n".encode()
    # Invalid UTF-8 is still refused.
    assert rejected(server, b"LIST \xc3\r\n").reply == Err(text="Invalid characters in command")


# --- response codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "wire"),
    [
        (
            Err(code="IN-USE", text="Do you have another POP session running?"),
            b"-ERR [IN-USE] Do you have another POP session running?\r\n",
        ),
        (Err(code="LOGIN-DELAY", text="wait longer"), b"-ERR [LOGIN-DELAY] wait longer\r\n"),
        (Err(code="SYS/TEMP", text="try later"), b"-ERR [SYS/TEMP] try later\r\n"),
        (Err(code="SYS/PERM", text="gone"), b"-ERR [SYS/PERM] gone\r\n"),
        (Err(code="AUTH", text="bad password"), b"-ERR [AUTH] bad password\r\n"),
        (Err(code="AUTH"), b"-ERR [AUTH]\r\n"),
    ],
)
def test_response_codes_on_login(reply: Err, wire: bytes) -> None:
    server = greeted()
    command(server, b"USER mrose\r\n")
    server.send(Ok())
    command(server, b"PASS secret\r\n")
    assert server.send(reply) == wire
    assert state(server) is AUTHORIZATION
