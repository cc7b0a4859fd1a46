"""Tests for mailproto.smtp._events: events are validated, frozen values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import attrs
import pytest

import mailproto.smtp
from mailproto import Event, LocalProtocolError
from mailproto.smtp import _events
from mailproto.smtp._events import (
    Auth,
    AuthCancel,
    AuthChallenge,
    AuthResponse,
    Bdat,
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
    Notify,
    Quit,
    RcptTo,
    Reply,
    Rset,
    SMTPEvent,
    StartTLS,
    Vrfy,
)

OK = Reply(code=250, lines=("OK",), enhanced="2.0.0")

# One instance of every event class, and a different one of the same class.
EXAMPLES: list[tuple[SMTPEvent, SMTPEvent]] = [
    (Ehlo(domain="a.example"), Ehlo(domain="b.example")),
    (Helo(domain="a.example"), Helo(domain="b.example")),
    (Lhlo(domain="a.example"), Lhlo(domain="b.example")),
    (MailFrom(sender="a@b"), MailFrom(sender="a@b", size=1)),
    (RcptTo(recipient="a@b"), RcptTo(recipient="a@b", notify=frozenset())),
    (Bdat(size=1), Bdat(size=1, last=True)),
    (Noop(), Noop(argument="x")),
    (Vrfy(argument="a"), Vrfy(argument="b")),
    (Expn(argument="a"), Expn(argument="b")),
    (Help(), Help(argument="MAIL")),
    (Auth(mechanism="PLAIN"), Auth(mechanism="PLAIN", initial_response=b"")),
    (AuthResponse(data=b"a"), AuthResponse(data=b"b")),
    (AuthChallenge(data=b"a"), AuthChallenge(data=b"b")),
    (MessageData(b"a"), MessageData(b"b")),
    (Reply(code=250), Reply(code=251)),
    (CommandRejected(reply=OK), CommandRejected(reply=OK, command=b"X")),
    (MessageRejected(reply=OK), MessageRejected(reply=Reply(code=550))),
]
FIELDLESS = [Data, Rset, Quit, StartTLS, AuthCancel, EndOfMessage, EndOfChunk, ConnectionClosed]


# --- values: frozen, hashable, equal by value -----------------------------------------


@pytest.mark.parametrize(("event", "other"), EXAMPLES, ids=lambda e: type(e).__name__)
def test_events_are_frozen_hashable_values(event: Any, other: Any) -> None:
    copy = attrs.evolve(event)
    assert copy == event
    assert copy is not event
    assert hash(copy) == hash(event)
    assert event != other
    assert len({event, copy, other}) == 2
    assert not hasattr(event, "__dict__")
    field = attrs.fields(type(event))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(event, field, getattr(other, field))
    assert getattr(event, field) == getattr(copy, field)  # unchanged
    assert isinstance(event, SMTPEvent)
    assert isinstance(event, Event)


@pytest.mark.parametrize("cls", FIELDLESS)
def test_fieldless_events(cls: type[SMTPEvent]) -> None:
    a, b = cls(), cls()
    assert a == b
    assert hash(a) == hash(b)
    assert isinstance(a, SMTPEvent)
    assert not hasattr(a, "__dict__")
    others = [c() for c in FIELDLESS if c is not cls]
    assert all(a != o for o in others)
    with pytest.raises(AttributeError):
        a.anything = 1  # type: ignore[attr-defined]


def _differ(a: object, b: object) -> bool:
    return a != b and b != a


def test_same_fields_different_class_are_not_equal() -> None:
    assert _differ(Ehlo(domain="a"), Helo(domain="a"))
    assert _differ(Ehlo(domain="a"), Lhlo(domain="a"))
    assert _differ(Vrfy(argument="a"), Expn(argument="a"))
    assert _differ(AuthResponse(data=b"x"), AuthChallenge(data=b"x"))


@pytest.mark.parametrize(
    "build",
    [
        lambda: Ehlo("a"),  # type: ignore[call-arg]
        lambda: MailFrom("a@b"),  # type: ignore[call-arg]
        lambda: Reply(250),  # type: ignore[call-arg]
        lambda: Auth("PLAIN"),  # type: ignore[call-arg]
    ],
)
def test_fields_are_keyword_only(build: Callable[[], object]) -> None:
    with pytest.raises(TypeError):
        build()


def test_public_names() -> None:
    for name in _events.__all__:
        assert getattr(mailproto.smtp, name) is getattr(_events, name)


# --- validation: text fields ----------------------------------------------------------

TEXT_FIELDS: list[tuple[str, Callable[[str], object]]] = [
    ("Ehlo.domain", lambda v: Ehlo(domain=v)),
    ("Helo.domain", lambda v: Helo(domain=v)),
    ("Lhlo.domain", lambda v: Lhlo(domain=v)),
    ("MailFrom.sender", lambda v: MailFrom(sender=v)),
    ("MailFrom.auth", lambda v: MailFrom(sender="", auth=v)),
    ("MailFrom.envid", lambda v: MailFrom(sender="", envid=v)),
    ("RcptTo.recipient", lambda v: RcptTo(recipient=v)),
    ("RcptTo.orcpt type", lambda v: RcptTo(recipient="a@b", orcpt=(v, "x"))),
    ("RcptTo.orcpt address", lambda v: RcptTo(recipient="a@b", orcpt=("rfc822", v))),
    ("Noop.argument", lambda v: Noop(argument=v)),
    ("Help.argument", lambda v: Help(argument=v)),
    ("Vrfy.argument", lambda v: Vrfy(argument=v)),
    ("Expn.argument", lambda v: Expn(argument=v)),
    ("Reply.lines", lambda v: Reply(code=250, lines=(v,))),
    ("Reply second line", lambda v: Reply(code=250, lines=("ok", v))),
]


@pytest.mark.parametrize(("name", "build"), TEXT_FIELDS, ids=[n for n, _ in TEXT_FIELDS])
@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "\r\n", "a\x00", "\ud800"])
def test_text_fields_refuse_cr_lf_nul(name: str, build: Callable[[str], object], bad: str) -> None:
    with pytest.raises(LocalProtocolError):
        build(bad)
    if "orcpt type" not in name:
        build("fine-text")  # the same field takes ordinary text


@pytest.mark.parametrize(("name", "build"), TEXT_FIELDS, ids=[n for n, _ in TEXT_FIELDS])
def test_text_fields_refuse_non_text(name: str, build: Callable[[Any], object]) -> None:
    with pytest.raises(LocalProtocolError):
        build(b"bytes")


def test_text_fields_take_utf8_and_other_controls() -> None:
    # UTF-8 and the other controls are the connection's business, not the event's.
    assert Vrfy(argument="δοκιμή\t\x01").argument == "δοκιμή\t\x01"
    assert Reply(code=250, lines=("héllo",)).lines == ("héllo",)
    assert MailFrom(sender="é@b", smtputf8=True).sender == "é@b"


@pytest.mark.parametrize("cls", [Ehlo, Helo, Lhlo])
@pytest.mark.parametrize("bad", ["", "a b", "a\tb", " a", "a "])
def test_hello_domain_is_one_word(cls: type[Ehlo | Helo | Lhlo], bad: str) -> None:
    with pytest.raises(LocalProtocolError):
        cls(domain=bad)


# --- validation: numbers and enumerations ---------------------------------------------


def test_reply_code_range() -> None:
    for code in (200, 250, 354, 421, 599):
        assert Reply(code=code).code == code
    for code in (0, 199, 600, 1000, -250):
        with pytest.raises(LocalProtocolError):
            Reply(code=code)


def test_reply_lines() -> None:
    assert Reply(code=250).lines == ("",)
    assert Reply(code=250, lines="a\nb").lines == ("a", "b")
    assert Reply(code=250, lines="").lines == ("",)
    assert Reply(code=250, lines=["a", "b"]).lines == ("a", "b")
    assert Reply(code=250, lines=(line for line in "ab")).lines == ("a", "b")
    with pytest.raises(LocalProtocolError):
        Reply(code=250, lines=())
    with pytest.raises(LocalProtocolError):
        Reply(code=250, lines=[])
    with pytest.raises(LocalProtocolError):
        Reply(code=250, lines="a\r\nb")  # split on LF: "a\r" is not text


def test_reply_properties() -> None:
    reply = Reply(code=250, lines=("a", "b"))
    assert reply.text == "a\nb"
    assert reply.is_success
    assert not reply.is_transient
    assert Reply(code=354).is_success
    assert Reply(code=421).is_transient
    assert not Reply(code=421).is_success
    assert not Reply(code=550).is_transient
    assert not Reply(code=550).is_success


@pytest.mark.parametrize(
    ("code", "enhanced"),
    [(250, "2.0.0"), (251, "2.1.5"), (421, "4.7.0"), (554, "5.7.1"), (550, "5.123.999")],
)
def test_enhanced_code_fits(code: int, enhanced: str) -> None:
    assert Reply(code=code, enhanced=enhanced).enhanced == enhanced


@pytest.mark.parametrize(
    ("code", "enhanced"),
    [
        (250, "5.0.0"),  # class mismatch
        (550, "2.0.0"),
        (450, "5.0.0"),
        (354, "3.0.0"),  # there is no class 3
        (354, "2.0.0"),
        (250, ""),
        (250, "2.0"),
        (250, "2.0.0.0"),
        (250, "2.1000.0"),
        (250, "2.0.1000"),
        (250, "2..0"),
        (250, "2.0.0 "),
        (250, "2.\u0661.0"),  # RFC 3463: ASCII digits, not ARABIC-INDIC DIGIT ONE
        (250, "2.0.²"),
    ],
)
def test_enhanced_code_refused(code: int, enhanced: str) -> None:
    with pytest.raises(LocalProtocolError):
        Reply(code=code, enhanced=enhanced)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "SCRAM-SHA-256", "X_Y", "M" * 20, "9"])
def test_mechanism_names(mechanism: str) -> None:
    assert Auth(mechanism=mechanism).mechanism == mechanism


@pytest.mark.parametrize("mechanism", ["", "plain", "PL AIN", "PLAIN!", "M" * 21, "PLÄIN", "A.B"])
def test_bad_mechanism_names(mechanism: str) -> None:
    with pytest.raises(LocalProtocolError):
        Auth(mechanism=mechanism)


def test_mail_from_size_range() -> None:
    assert MailFrom(sender="", size=0).size == 0
    assert MailFrom(sender="", size=10**20 - 1).size == 10**20 - 1
    for bad in (-1, 10**20):
        with pytest.raises(LocalProtocolError):
            MailFrom(sender="", size=bad)


def test_bdat_size_range() -> None:
    assert Bdat(size=0).size == 0
    assert Bdat(size=10**20 - 1, last=True).last
    for bad in (-1, 10**20):
        with pytest.raises(LocalProtocolError):
            Bdat(size=bad)


def test_mail_from_enumerations() -> None:
    for body in ("7BIT", "8BITMIME", "BINARYMIME"):
        assert MailFrom(sender="", body=body).body == body
    for ret in ("FULL", "HDRS"):
        assert MailFrom(sender="", ret=ret).ret == ret
    with pytest.raises(LocalProtocolError):
        MailFrom(sender="", body="8BIT")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        MailFrom(sender="", body="8bitmime")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        MailFrom(sender="", ret="ALL")  # type: ignore[arg-type]


def test_mail_from_auth_and_envid() -> None:
    assert MailFrom(sender="", auth="").auth == ""  # AUTH=<>
    assert MailFrom(sender="", envid="e" * 100).envid == "e" * 100
    assert MailFrom(sender="", envid="+" * 33).envid == "+" * 33  # 99 as xtext
    assert MailFrom(sender="", envid="é" * 16).envid == "é" * 16  # 96 as xtext
    # RFC 3461 section 4.4: 1 to 100 characters, counted as xtext.
    for bad in ("", "e" * 101, "+" * 34, "é" * 17, " " * 34):
        with pytest.raises(LocalProtocolError):
            MailFrom(sender="", envid=bad)


def test_rcpt_to_validation() -> None:
    with pytest.raises(LocalProtocolError):
        RcptTo(recipient="")  # no null forward-path
    assert RcptTo(recipient="a@b", notify=frozenset()).notify == frozenset()
    full: frozenset[Notify] = frozenset({"SUCCESS", "FAILURE", "DELAY"})
    assert RcptTo(recipient="a@b", notify=full).notify == full
    for bad in ({"NEVER"}, {"SUCCESS", "never"}, {"success"}):
        with pytest.raises(LocalProtocolError):
            RcptTo(recipient="a@b", notify=cast(Any, frozenset(bad)))
    assert RcptTo(recipient="a@b", orcpt=("rfc822", "x@y")).orcpt == ("rfc822", "x@y")
    assert RcptTo(recipient="a@b", orcpt=("RFC822", "é")).orcpt == ("RFC822", "é")
    for orcpt in (("rfc822", ""), ("", "x"), ("rf c", "x"), ("rfc;822", "x"), ("é", "x")):
        with pytest.raises(LocalProtocolError):
            RcptTo(recipient="a@b", orcpt=orcpt)


@pytest.mark.parametrize("cls", [MailFrom, RcptTo])
def test_extra_parameters(cls: Callable[..., MailFrom | RcptTo]) -> None:
    address = {"sender": "a@b"} if cls is MailFrom else {"recipient": "a@b"}
    event = cls(**address, extra=[("xfoo", "1"), ("X-BAR", None), ("X9", "é")])
    assert event.extra == (("XFOO", "1"), ("X-BAR", None), ("X9", "é"))
    assert hash(event) == hash(cls(**address, extra=(("XFOO", "1"), ("X-BAR", None), ("X9", "é"))))
    for bad in [
        ("", None),
        ("-X", None),
        ("X_Y", None),
        ("X Y", None),
        ("é", None),
        ("X", ""),
        ("X", "a b"),
        ("X", "a=b"),
        ("X", "a\x7f"),
        ("X", "a\x01"),
        ("X", "a\r\n"),
        ("X", "\ud800"),
    ]:
        with pytest.raises(LocalProtocolError):
            cls(**address, extra=[bad])


def test_body_and_rejection_events() -> None:
    assert MessageData(b"chunk").data == b"chunk"
    assert MessageData(data=b"chunk") == MessageData(b"chunk")
    rejected = CommandRejected(reply=OK)
    assert rejected.command == b""
    assert CommandRejected(reply=OK, command=b"FOO").command == b"FOO"
    assert MessageRejected(reply=OK).reply is OK
    assert Auth(mechanism="PLAIN").initial_response is None
