"""POP3 grammar: command lines, status lines, CAPA, listings, APOP; events' validation.

Known-answer tables in both directions, then Hypothesis round trips
(``parse(format(e)) == e``) over generated commands and responses.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto import LocalProtocolError
from mailproto.pop3 import (
    Apop,
    Auth,
    AuthCancel,
    AuthResponse,
    Capa,
    Capabilities,
    Dele,
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
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
    apop_digest,
    apop_timestamp,
    format_capabilities,
    parse_scan_listing,
    parse_uidl_listing,
    uidl_ok,
)
from mailproto.pop3._syntax import (
    Rejection,
    format_command,
    format_status,
    parse_auth_response,
    parse_command,
    parse_status_line,
)

DIGEST = "c4c9334bac560ecc979e58001b3e22fb"

# (line, event): parse_command(line) == event, and format_command(event) == line + CRLF
# where the line is already in canonical form.
COMMANDS: list[tuple[bytes, POP3Event]] = [
    (b"USER mrose", User(name="mrose")),
    (b"PASS secret", Pass(password="secret")),
    (b"PASS two words  and more ", Pass(password="two words  and more ")),
    (b"APOP mrose " + DIGEST.encode(), Apop(name="mrose", digest=DIGEST)),
    (b"AUTH", Auth()),
    (b"AUTH PLAIN", Auth(mechanism="PLAIN")),
    (b"AUTH PLAIN =", Auth(mechanism="PLAIN", initial_response=b"")),
    (
        b"AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=",
        Auth(mechanism="PLAIN", initial_response=b"test\0test\0test"),
    ),
    (b"AUTH SCRAM-SHA-256", Auth(mechanism="SCRAM-SHA-256")),
    (b"QUIT", Quit()),
    (b"STAT", Stat()),
    (b"LIST", List()),
    (b"LIST 2", List(msg=2)),
    (b"RETR 1", Retr(msg=1)),
    (b"DELE 9999999999", Dele(msg=9999999999)),
    (b"NOOP", Noop()),
    (b"RSET", Rset()),
    (b"TOP 1 0", Top(msg=1, lines=0)),
    (b"TOP 12 9999999999", Top(msg=12, lines=9999999999)),
    (b"UIDL", Uidl()),
    (b"UIDL 3", Uidl(msg=3)),
    (b"CAPA", Capa()),
    (b"STLS", Stls()),
    (b"UTF8", Utf8()),
]


@pytest.mark.parametrize(("line", "event"), COMMANDS)
def test_known_commands(line: bytes, event: POP3Event) -> None:
    assert parse_command(line) == event
    assert format_command(event) == line + b"\r\n"
    assert parse_command(format_command(event)[:-2]) == event


@pytest.mark.parametrize(
    ("line", "event"),
    [
        # Keywords are case-insensitive (RFC 1939 section 3), arguments are not.
        (b"user MRose", User(name="MRose")),
        (b"Retr 7", Retr(msg=7)),
        (b"apop mrose " + DIGEST.upper().encode(), Apop(name="mrose", digest=DIGEST)),
        (b"auth plain =", Auth(mechanism="PLAIN", initial_response=b"")),
        (b"list 007", List(msg=7)),
        # A trailing space after an argument-less command is tolerated.
        (b"STAT ", Stat()),
        (b"PASS  leading space", Pass(password=" leading space")),
        (b"uTf8", Utf8()),
    ],
)
def test_lenient_forms(line: bytes, event: POP3Event) -> None:
    assert parse_command(line) == event


def test_utf8_arguments_need_utf8_mode() -> None:
    line = "USER jürgen".encode()
    with pytest.raises(Rejection) as info:
        parse_command(line)
    assert info.value.reply == Err(text="Non-ASCII command: send UTF8 first")
    assert parse_command(line, utf8=True) == User(name="jürgen")
    assert parse_command("PASS pässwörd".encode(), utf8=True) == Pass(password="pässwörd")
    with pytest.raises(Rejection) as info:
        parse_command(b"USER \xff\xfe")
    assert info.value.reply.text == "Invalid characters in command"
    with pytest.raises(Rejection) as info:
        parse_command(b"USER \xff\xfe", utf8=True)
    assert info.value.reply.text == "Invalid characters in command"


SYNTAX_ERRORS: list[tuple[bytes, str]] = [
    (b"", "Unknown command"),
    (b"HELO there", "Unknown command"),
    (b"XTND XMIT", "Unknown command"),
    (b"STAT\t", "Unknown command"),
    (b" STAT", "Unknown command"),
    (b"USER", "Wrong number of arguments for USER"),
    (b"USER a b", "Wrong number of arguments for USER"),
    (b"USER  a", "Wrong number of arguments for USER"),
    (b"PASS", "Syntax: PASS password"),
    (b"PASS ", "Syntax: PASS password"),
    (b"APOP mrose", "Wrong number of arguments for APOP"),
    (b"APOP mrose " + DIGEST.encode() + b" x", "Wrong number of arguments for APOP"),
    (b"APOP mrose c4c9334bac560ecc979e58001b3e22f", "Syntax: APOP name digest"),
    (b"APOP mrose " + b"g" * 32, "Syntax: APOP name digest"),
    (b"AUTH PLAIN a b", "Wrong number of arguments for AUTH"),
    (b"AUTH PL@IN", "Syntax: AUTH mechanism [initial-response]"),
    (b"AUTH " + b"X" * 21, "Syntax: AUTH mechanism [initial-response]"),
    (b"AUTH PLAIN !!!!", "Invalid base64 data"),
    (b"AUTH PLAIN dGVzdA", "Invalid base64 data"),
    (b"QUIT now", "QUIT takes no argument"),
    (b"STAT 1", "STAT takes no argument"),
    (b"NOOP x", "NOOP takes no argument"),
    (b"RSET x", "RSET takes no argument"),
    (b"CAPA x", "CAPA takes no argument"),
    (b"STLS x", "STLS takes no argument"),
    (b"UTF8 on", "UTF8 takes no argument"),
    (b"LIST 1 2", "Wrong number of arguments for LIST"),
    (b"LIST 0", "Invalid message number: 0"),
    (b"LIST -1", "Invalid message number: -1"),
    (b"LIST one", "Invalid message number: one"),
    (b"LIST 12345678901", "Invalid message number: 12345678901"),
    (b"LIST +1", "Invalid message number: +1"),
    (b"UIDL 1 2", "Wrong number of arguments for UIDL"),
    (b"UIDL x", "Invalid message number: x"),
    (b"RETR", "Wrong number of arguments for RETR"),
    (b"RETR 1 2", "Wrong number of arguments for RETR"),
    (b"RETR 0", "Invalid message number: 0"),
    (b"RETR 1.5", "Invalid message number: 1.5"),
    (b"DELE", "Wrong number of arguments for DELE"),
    (b"DELE 00", "Invalid message number: 00"),
    (b"DELE " + b"9" * 30, "Invalid message number: " + "9" * 20),
    (b"TOP 1", "Wrong number of arguments for TOP"),
    (b"TOP 1 2 3", "Wrong number of arguments for TOP"),
    (b"TOP 0 1", "Invalid message number: 0"),
    (b"TOP 1 -1", "Invalid line count: -1"),
    (b"TOP 1 x", "Invalid line count: x"),
    (b"TOP 1 12345678901", "Invalid line count: 12345678901"),
    # Unicode digits are digits to str.isdigit(), not to POP3.
    ("RETR ²".encode(), "Invalid message number: ²"),
    ("TOP 1 ٣".encode(), "Invalid line count: ٣"),
    # NUL, a bare CR or a bare LF inside a line: -ERR, never a crash.
    (b"USER a\x00b", "Invalid characters in command"),
    (b"USER a\rb", "Invalid characters in command"),
    (b"PASS se\ncret", "Invalid characters in command"),
    (b"APOP a\x00 " + DIGEST.encode(), "Invalid characters in command"),
    (b"NOOP\r", "Invalid characters in command"),
]


@pytest.mark.parametrize(("line", "text"), SYNTAX_ERRORS)
def test_syntax_errors(line: bytes, text: str) -> None:
    with pytest.raises(Rejection) as info:
        parse_command(line, utf8=True)
    assert info.value.reply == Err(text=text)
    assert str(info.value) == text


def test_keywords_are_ascii_only() -> None:
    # U+017F (long s) upper-cases to "S" and U+FB06 (the "st" ligature) to "ST": a verb
    # must be ASCII before it is upper-cased, or these would sneak through as STAT.
    for verb in ("\u017ftat", "\ufb06at"):
        assert verb.upper() == "STAT"
        with pytest.raises(Rejection) as info:
            parse_command(verb.encode(), utf8=True)
        assert info.value.reply.text == "Unknown command"


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (b"*", AuthCancel()),
        (b"", AuthResponse(data=b"")),
        (b"dGVzdAB0ZXN0AHRlc3Q=", AuthResponse(data=b"test\0test\0test")),
    ],
)
def test_auth_responses(line: bytes, event: POP3Event) -> None:
    assert parse_auth_response(line) == event
    assert format_command(event) == line + b"\r\n"


@pytest.mark.parametrize("line", [b"**", b"dGVzdA", b"dGVz dA==", "dGVzdA€=".encode(), b"="])
def test_bad_auth_responses(line: bytes) -> None:
    with pytest.raises(Rejection) as info:
        parse_auth_response(line)
    assert info.value.reply == Err(text="Invalid base64 data")


def test_format_command_refuses_responses() -> None:
    for event in (Ok(), Err(), ResponseData(b"x")):
        with pytest.raises(TypeError):
            format_command(event)


# --- status lines ---------------------------------------------------------------------------

STATUS: list[tuple[bytes, Ok | Err]] = [
    (b"+OK", Ok()),
    (b"-ERR", Err()),
    (b"+OK 2 320", Ok(text="2 320")),
    (b"-ERR no such message", Err(text="no such message")),
    (
        b"-ERR [IN-USE] Do you have another POP session running?",
        Err(code="IN-USE", text="Do you have another POP session running?"),
    ),
    (b"-ERR [LOGIN-DELAY] wait a while", Err(code="LOGIN-DELAY", text="wait a while")),
    (b"-ERR [SYS/TEMP] try later", Err(code="SYS/TEMP", text="try later")),
    (b"-ERR [SYS/PERM] mailbox gone", Err(code="SYS/PERM", text="mailbox gone")),
    (b"-ERR [AUTH] bad password", Err(code="AUTH", text="bad password")),
    (b"+OK [XYZZY/A/B]", Ok(code="XYZZY/A/B")),
    (b"+OK  two spaces", Ok(text=" two spaces")),
    (b"+OK [X]  y", Ok(code="X", text=" y")),
    (b"+OK [X] [Y] z", Ok(code="X", text="[Y] z")),
    (b"-ERR [", Err(text="[")),
    (b"-ERR [] empty", Err(text="[] empty")),
    (b"+OK caf\xc3\xa9", Ok(text="café")),
]


@pytest.mark.parametrize(("line", "event"), STATUS)
def test_known_status_lines(line: bytes, event: Ok | Err) -> None:
    assert parse_status_line(line) == event
    assert format_status(event) == line + b"\r\n"


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (b"+ok fine", Ok(text="fine")),
        (b"-err nope", Err(text="nope")),
        (b"+OK\tTAB", Ok(text="TAB")),
        (b"+OK [CODE]text", Ok(code="CODE", text="text")),
        (b"+OK nul\x00byte", Ok(text="nulbyte")),
        (b"-ERR \xff", Err(text="\ufffd")),
    ],
)
def test_lenient_status_lines(line: bytes, event: Ok | Err) -> None:
    assert parse_status_line(line) == event


@pytest.mark.parametrize("line", [b"", b"OK", b"+OKAY", b"-ERROR x", b"+ OK", b"* OK", b"+"])
def test_not_status_lines(line: bytes) -> None:
    assert parse_status_line(line) is None


# --- helpers ---------------------------------------------------------------------------


def test_apop() -> None:
    greeting = "POP3 server ready <1896.697170952@dbc.mtview.ca.us>"
    assert apop_timestamp(greeting) == "<1896.697170952@dbc.mtview.ca.us>"
    assert apop_timestamp("POP3 server ready") is None
    assert apop_timestamp("ready <no-at-sign>") is None
    assert apop_timestamp("ready <a b@c>") is None
    assert apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf") == DIGEST


def test_capabilities() -> None:
    body = b"TOP\r\nsasl PLAIN login\r\n\r\n  \r\nPIPELINING\r\nIMPLEMENTATION x y\r\n"
    caps = Capabilities.parse(body)
    assert caps.tags == {
        "TOP": (),
        "SASL": ("PLAIN", "login"),
        "PIPELINING": (),
        "IMPLEMENTATION": ("x", "y"),
    }
    assert "Pipelining" in caps
    assert "STLS" not in caps
    assert caps.sasl_mechanisms == frozenset({"PLAIN", "LOGIN"})
    assert Capabilities().sasl_mechanisms == frozenset()
    assert "TOP" not in Capabilities()
    assert Capabilities.parse(b"\xff\r\n").tags == {"\ufffd": ()}
    assert format_capabilities(["TOP", "SASL PLAIN"]) == b"TOP\r\nSASL PLAIN\r\n"
    assert Capabilities.parse(format_capabilities(["TOP", "SASL PLAIN"])).tags == {
        "TOP": (),
        "SASL": ("PLAIN",),
    }


def test_listings() -> None:
    assert parse_scan_listing(b"1 120\r\n2 200 extra\r\nbad line\r\n3\r\nx 5\r\n4 y\r\n") == [
        (1, 120),
        (2, 200),
    ]
    assert parse_scan_listing(b"") == []
    assert parse_uidl_listing(b"1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\nz q\r\n") == [
        (1, "whqtswO00WBw418f9t5JxYwZ"),
        (2, "QhdPYR:00WBw1Ph7x7"),
    ]
    assert parse_uidl_listing(b"1\r\n") == []
    assert uidl_ok("whqtswO00WBw418f9t5JxYwZ")
    assert uidl_ok("!" * 70)
    assert not uidl_ok("!" * 71)
    assert not uidl_ok("")
    assert not uidl_ok("a b")
    assert not uidl_ok("é")


# --- events are validated when built -----------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: User(name=""),
        lambda: User(name="a b"),
        lambda: User(name="a\r\nQUIT"),
        lambda: Pass(password=""),
        lambda: Pass(password="x\x00"),
        lambda: Apop(name="mrose", digest=DIGEST.upper()),
        lambda: Apop(name="mrose", digest="abc"),
        lambda: Auth(mechanism="plain"),
        lambda: Auth(mechanism="A" * 21),
        lambda: Auth(mechanism=None, initial_response=b""),
        lambda: List(msg=0),
        lambda: Uidl(msg=-1),
        lambda: Retr(msg=10**10),
        lambda: Dele(msg=0),
        lambda: Top(msg=1, lines=-1),
        lambda: Top(msg=1, lines=10**10),
        lambda: Top(msg=0, lines=1),
        lambda: Ok(text="a\nb"),
        lambda: Err(text="\r"),
        lambda: Ok(code="SYS//TEMP"),
        lambda: Ok(code="[AUTH]"),
        lambda: Err(code=""),
        lambda: Err(code="A B"),
        # Without a code, a text that reads as one would come back as a code.
        lambda: Err(text="[AUTH] wrong"),
        lambda: Ok(text="[X]"),
    ],
)
def test_invalid_events(build: object) -> None:
    assert callable(build)
    with pytest.raises(LocalProtocolError):
        build()


def test_secrets_stay_out_of_repr() -> None:
    assert "hunter2" not in repr(Pass(password="hunter2"))
    assert "hunter2" not in repr(AuthResponse(data=b"hunter2"))


# --- round trips ---------------------------------------------------------------------------

_word = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00 "),
    min_size=1,
    max_size=40,
)
_password = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"),
    min_size=1,
    max_size=60,
)
_msg = st.integers(1, 10**10 - 1)
_mechanism = st.from_regex(r"[A-Z0-9_-]{1,20}", fullmatch=True)

commands = st.one_of(
    st.builds(User, name=_word),
    st.builds(Pass, password=_password),
    st.builds(Apop, name=_word, digest=st.from_regex(r"[0-9a-f]{32}", fullmatch=True)),
    st.builds(Auth),
    st.builds(Auth, mechanism=_mechanism, initial_response=st.none() | st.binary(max_size=64)),
    st.builds(List, msg=st.none() | _msg),
    st.builds(Uidl, msg=st.none() | _msg),
    st.builds(Retr, msg=_msg),
    st.builds(Dele, msg=_msg),
    st.builds(Top, msg=_msg, lines=st.integers(0, 10**10 - 1)),
    st.sampled_from([Quit(), Stat(), Noop(), Rset(), Capa(), Stls(), Utf8()]),
)


@settings(max_examples=400, deadline=None)
@given(commands)
def test_command_round_trip(event: POP3Event) -> None:
    line = format_command(event)
    assert line.endswith(b"\r\n")
    assert b"\r" not in line[:-2]
    assert b"\n" not in line[:-2]
    assert parse_command(line[:-2], utf8=True) == event


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=64).map(lambda d: AuthResponse(data=d)), st.just(AuthCancel())))
def test_auth_response_round_trip(event: POP3Event) -> None:
    assert parse_auth_response(format_command(event)[:-2]) == event


_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"),
    max_size=60,
)
# resp-level = 1*rchar: printable ASCII but "/" and "]" (RFC 2449 section 8).
_level = st.text(
    alphabet=st.sampled_from([chr(c) for c in range(0x21, 0x80) if chr(c) not in "/]"]),
    min_size=1,
    max_size=8,
)
_code = st.lists(_level, min_size=1, max_size=3).map("/".join)


@st.composite
def responses(draw: st.DrawFn) -> Ok | Err:
    ok = draw(st.booleans())
    code = draw(st.none() | _code)
    text = draw(_text)
    try:
        return Ok(code=code, text=text) if ok else Err(code=code, text=text)
    except LocalProtocolError:
        # A text that reads as a response code is only valid behind a real one.
        return Ok(code="X", text=text) if ok else Err(code="X", text=text)


@settings(max_examples=300, deadline=None)
@given(responses())
def test_status_round_trip(event: Ok | Err) -> None:
    assert parse_status_line(format_status(event)[:-2]) == event


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_parsers_never_crash(line: bytes) -> None:
    for utf8 in (False, True):
        outcome: POP3Event | Err
        try:
            outcome = parse_command(line, utf8=utf8)
        except Rejection as rej:
            outcome = rej.reply
        assert isinstance(outcome, POP3Event)
    with contextlib.suppress(Rejection):
        assert isinstance(parse_auth_response(line), AuthResponse | AuthCancel)
    if b"\r" in line or b"\n" in line:
        # A status text may not hold a bare CR or LF; the client turns this into
        # RemoteProtocolError.
        with contextlib.suppress(LocalProtocolError):
            parse_status_line(line)
    else:
        status = parse_status_line(line)
        assert status is None or isinstance(status, Ok | Err)
