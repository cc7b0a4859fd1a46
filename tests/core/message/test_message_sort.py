"""SORT (RFC 5256, RFC 5957 DISPLAY*) and base subject extraction (RFC 5256 2.1)."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto.imap._commands import SORT_KEYS, SortCriterion
from mailproto.message._model import Message, parse_message
from mailproto.message._search import MessageInfo
from mailproto.message._sort import ascii_casemap, base_subject, sort

UTC = datetime.UTC
BASE = datetime.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def make(
    seq: int,
    header: str,
    *,
    arrival: datetime.datetime | None = None,
    size: int | None = None,
    calls: list[int] | None = None,
) -> MessageInfo:
    data = (header.strip("\n") + "\n\nbody\n").replace("\n", "\r\n").encode()

    def load() -> Message:
        if calls is not None:
            calls.append(seq)
        return parse_message(data)

    return MessageInfo(
        seq=seq,
        uid=100 + seq,
        internal_date=arrival or BASE,
        size=len(data) if size is None else size,
        load=load,
    )


def by(*keys: str) -> list[SortCriterion]:
    out = []
    for k in keys:
        reverse = k.startswith("-")
        out.append(SortCriterion(key=k.lstrip("-"), reverse=reverse))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("hello", "hello", False),
        ("Re: hello", "hello", True),
        ("RE:hello", "hello", True),
        ("re : hello", "hello", True),  # *WSP before the colon
        ("Re[2]: hello", "hello", True),  # a blob inside subj-refwd
        ("Re [2]: hello", "hello", True),
        ("Fw: hello", "hello", True),
        ("FWD: Re: fwd: hello", "hello", True),
        ("Reply: hello", "Reply: hello", False),
        ("[list] Re: hello", "hello", True),  # blobs before subj-refwd
        ("[list] [x] Re: hello", "hello", True),
        ("[list] hello", "hello", False),  # step 4
        ("[list]", "[list]", False),  # ... not when nothing would be left
        ("[a] [b]", "[b]", False),
        ("[a][b] Re: [c] hello", "hello", True),
        ("hello (fwd)", "hello", True),  # step 2
        ("hello (FWD) (fwd)   ", "hello", True),
        ("hello(fwd)world", "hello(fwd)world", False),
        ("[Fwd: hello]", "hello", True),  # step 6
        ("[fwd: Re: [x] hello (fwd)]", "hello", True),
        ("Re: [fwd: hello]", "hello", True),
        ("[fwd: [fwd: hello]]", "hello", True),
        ("[fwd: hello", "[fwd: hello", False),  # no "]": neither a blob nor step 6
        ("   hello \t  world  ", "hello world", False),  # step 1
        ("Re:\r\n\thello", "hello", True),
        ("Re:", "", True),
        ("", "", False),
        ("[日本] hello", "hello", False),  # Dovecot reads any non-bracket as BLOBCHAR
        ("=?utf-8?q?Re=3A_caf=C3=A9?=", "café", True),
        ("=?utf-8?q?=5Bliste=5D?= =?utf-8?q?_Fwd=3A_x?=", "x", True),
    ],
)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert base_subject(subject.encode()) == (base, reply)
    assert base_subject(subject)[0] == base or "=?" in subject


@pytest.mark.parametrize(
    "subject",
    ["Re: " * 40000 + "x", "[a] " * 40000 + "x", "x" + " (fwd)" * 40000, "[" * 100000],
)
def test_base_subject_is_linear(subject: str) -> None:
    start = time.perf_counter()
    base_subject(subject)
    assert time.perf_counter() - start < 1.0


@given(st.text(max_size=60))
def test_base_subject_is_idempotent_on_its_result(text: str) -> None:
    base, _ = base_subject(text)
    assert base_subject(base)[0] == base or base.startswith("[")


def test_ascii_casemap() -> None:
    assert ascii_casemap("abc XyZ é") == "ABC XYZ é"


def test_rfc5256_example_subject_then_reverse_date() -> None:
    # C: A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL  /  S: * SORT 5 3 4 1 2
    box = [
        make(1, "Subject: gamma\nDate: Mon, 4 Mar 2024 10:00:00 +0000"),
        make(2, "Subject: Re: Gamma\nDate: Sun, 3 Mar 2024 10:00:00 +0000"),
        make(3, "Subject: [list] beta\nDate: Mon, 4 Mar 2024 10:00:00 +0000"),
        make(4, "Subject: BETA\nDate: Sat, 2 Mar 2024 10:00:00 +0000"),
        make(5, "Subject: alpha"),
    ]
    assert sort(by("SUBJECT", "-DATE"), box) == [5, 3, 4, 1, 2]
    assert sort(by("SUBJECT", "-DATE"), box, uid=True) == [105, 103, 104, 101, 102]


def test_arrival_and_size_never_load() -> None:
    calls: list[int] = []
    box = [
        make(1, "a: b", arrival=BASE, size=30, calls=calls),
        make(2, "a: b", arrival=BASE - datetime.timedelta(hours=1), size=10, calls=calls),
        make(3, "a: b", arrival=datetime.datetime(2024, 3, 1, 11, 30), size=30, calls=calls),
    ]
    assert sort(by("ARRIVAL"), box) == [2, 3, 1]  # a naive INTERNALDATE reads as UTC
    assert sort(by("-ARRIVAL"), box) == [1, 3, 2]
    assert sort(by("SIZE"), box) == [2, 1, 3]  # ties in sequence order
    assert sort(by("-SIZE"), box) == [1, 3, 2]  # ... even reversed
    assert sort(by("SIZE", "-ARRIVAL"), box) == [2, 1, 3]
    assert calls == []


def test_date_falls_back_to_internaldate() -> None:
    box = [
        make(1, "Date: Fri, 1 Mar 2024 13:00:00 +0000"),  # after BASE
        make(2, "Subject: no date", arrival=BASE + datetime.timedelta(minutes=30)),
        make(3, "Date: Fri, 1 Mar 2024 13:00:00 +0200"),  # 11:00 UTC
        make(4, "Date: garbage", arrival=BASE - datetime.timedelta(days=1)),
    ]
    assert sort(by("DATE"), box) == [4, 3, 2, 1]
    assert sort(by("-DATE"), box) == [1, 2, 3, 4]


def test_address_keys() -> None:
    box = [
        make(1, "From: Zed <alpha@z.example>\nTo: x@y, a@b\nCc: Beta <beta@c.example>"),
        make(2, "From: =?utf-8?q?Al?= <zulu@a.example>\nTo: Bob <BOB@b>"),
        make(3, "From: team: Carl <carl@c>;\nTo: undisclosed-recipients:;"),
        make(4, "Subject: nobody"),
    ]
    # addr-mailbox of the first ENVELOPE address, a group's name included (as Dovecot)
    assert sort(by("FROM"), box) == [4, 1, 3, 2]  # "", alpha, team, zulu
    assert sort(by("TO"), box) == [4, 2, 3, 1]  # "", BOB, undisclosed-recipients, x
    assert sort(by("CC"), box) == [2, 3, 4, 1]
    assert sort(by("-CC", "FROM"), box) == [1, 4, 3, 2]
    assert sort(by("DISPLAYFROM"), box) == [4, 2, 3, 1]  # "", al, team, zed
    assert sort(by("DISPLAYTO"), box) == [4, 2, 3, 1]  # "", bob, undisclosed..., x@y
    assert sort(by("SUBJECT"), box) == [1, 2, 3, 4]


def test_each_message_loaded_once() -> None:
    calls: list[int] = []
    box = [make(i, f"Subject: s{i % 2}\nFrom: u{i}@x", calls=calls) for i in range(1, 5)]
    assert sort(by("SUBJECT", "-FROM", "DATE"), box) == [4, 2, 3, 1]
    assert sorted(calls) == [1, 2, 3, 4]


def test_empty_and_unloadable_fields() -> None:
    fail: Callable[[], Message] = lambda: parse_message(b"\xff\x00: \r\n\r\n")  # noqa: E731
    box = [MessageInfo(seq=1, uid=1, internal_date=BASE, size=0, load=fail)]
    for key in ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM"):
        assert sort(by(key), box) == [1]
    assert sort(by("SUBJECT"), []) == []


_FIELD_BYTES = st.one_of(
    st.binary(max_size=80),
    st.sampled_from([b"=?utf-8?q?Re=3A?= [x]", b"a: <b@c>;", b"<@r:x@y>", b'"q\\', b"(fwd)"]),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_FIELD_BYTES, _FIELD_BYTES), max_size=5),
    st.lists(st.sampled_from(SORT_KEYS), min_size=1, max_size=3),
    st.booleans(),
)
def test_sort_never_raises(
    fields: list[tuple[bytes, bytes]], keys: list[str], reverse: bool
) -> None:
    box = []
    for i, (a, b) in enumerate(fields, 1):
        data = b"From: %b\r\nTo: %b\r\nCc: %b\r\nSubject: %b\r\nDate: %b\r\n\r\nx" % (a, b, a, b, a)
        box.append(
            MessageInfo(
                seq=i, uid=i, internal_date=BASE, size=len(data),
                load=lambda data=data: parse_message(data),  # type: ignore[misc]
            )
        )  # fmt: skip
    criteria = [SortCriterion(key=k, reverse=reverse) for k in keys]  # type: ignore[arg-type]
    assert sorted(sort(criteria, box)) == list(range(1, len(box) + 1))
