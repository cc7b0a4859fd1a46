"""SEARCH evaluation over hand-built mailboxes: every key, laziness, ESEARCH shapes."""

from __future__ import annotations

import base64
import datetime
import quopri
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto.imap._grammar import SequenceSet
from mailproto.imap._responses import BadCharset, ESearch
from mailproto.imap._search import (
    SAVED,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchKeyword,
    SearchModSeq,
    SearchNot,
    SearchObjectId,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchText,
)
from mailproto.message._model import Message, parse_message
from mailproto.message._search import (
    MessageInfo,
    UnknownCharset,
    address_text,
    esearch,
    parse_date,
    saved_result,
    search,
    search_messages,
    uses_modseq,
)

UTC = datetime.UTC
EST = datetime.timezone(datetime.timedelta(hours=-5))


class Loads:
    """Counts calls of each message's ``load``."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def loader(self, seq: int, data: bytes) -> Callable[[], Message]:
        def load() -> Message:
            self.calls.append(seq)
            return parse_message(data)

        return load


def crlf(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def make(
    seq: int,
    text: str | bytes = "Subject: x\n\nbody\n",
    *,
    uid: int | None = None,
    flags: Sequence[str] = (),
    date: datetime.datetime | None = None,
    modseq: int = 0,
    email_id: str | None = None,
    thread_id: str | None = None,
    loads: Loads | None = None,
) -> MessageInfo:
    data = crlf(text)
    loads = loads or Loads()
    return MessageInfo(
        seq=seq,
        uid=uid if uid is not None else seq * 10,
        flags=frozenset(flags),
        internal_date=date or datetime.datetime(2024, 1, 10, 12, 0, tzinfo=UTC),
        size=len(data),
        load=loads.loader(seq, data),
        modseq=modseq,
        email_id=email_id,
        thread_id=thread_id,
    )


# --- metadata keys ------------------------------------------------------------------

FLAGGED_BOX = [
    make(1, flags=("\\Seen", "\\Answered", "$Forwarded")),
    make(2, flags=("\\Recent",)),
    make(3, flags=("\\Recent", "\\SEEN", "\\Deleted", "\\Draft")),
    make(4, flags=("\\Flagged", "$junk")),
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ALL", [1, 2, 3, 4]),
        ("ANSWERED", [1]),
        ("UNANSWERED", [2, 3, 4]),
        ("DELETED", [3]),
        ("UNDELETED", [1, 2, 4]),
        ("DRAFT", [3]),
        ("UNDRAFT", [1, 2, 4]),
        ("FLAGGED", [4]),
        ("UNFLAGGED", [1, 2, 3]),
        ("SEEN", [1, 3]),  # flag names compare without regard to case
        ("UNSEEN", [2, 4]),
        ("RECENT", [2, 3]),
        ("OLD", [1, 4]),
        ("NEW", [2]),  # RECENT and UNSEEN
    ],
)
def test_flag_keys(name: str, expected: list[int]) -> None:
    assert search(SearchFlag(name=name), FLAGGED_BOX) == expected  # type: ignore[arg-type]


def test_keywords() -> None:
    assert search(SearchKeyword(keyword="$forwarded"), FLAGGED_BOX) == [1]
    assert search(SearchKeyword(keyword="$Junk"), FLAGGED_BOX) == [4]
    assert search(SearchKeyword(keyword="$Junk", negate=True), FLAGGED_BOX) == [1, 2, 3]
    assert search(SearchKeyword(keyword="nothing"), FLAGGED_BOX) == []


def test_flag_searches_never_load() -> None:
    loads = Loads()
    box = [make(i, loads=loads, flags=("\\Seen",) if i % 2 else ()) for i in range(1, 6)]
    keys: list[SearchKey] = [
        SearchFlag(name="SEEN"),
        SearchNot(key=SearchKeyword(keyword="x")),
        SearchOr(left=SearchSize(name="LARGER", size=3), right=SearchFlag(name="NEW")),
        SearchSet(set=SequenceSet.parse("2:*")),
        SearchSet(set=SequenceSet.parse("1"), uid=True),
        SearchDate(name="SINCE", date=datetime.date(2020, 1, 1)),
        SearchModSeq(modseq=1),
        SearchObjectId(name="EMAILID", id="e1"),
    ]
    for key in keys:
        search(key, box)
    search(keys, box, uid=True)
    assert loads.calls == []


def test_cheap_keys_first_and_one_load_per_message() -> None:
    loads = Loads()
    box = [
        make(i, "Subject: hello\n\nworld\n", loads=loads, flags=("\\Seen",) if i != 2 else ())
        for i in range(1, 5)
    ]
    keys = [
        SearchText(name="BODY", value=b"world"),
        SearchText(name="SUBJECT", value=b"hello"),
        SearchText(name="TEXT", value=b"hello"),
        SearchText(name="TEXT", value=b"world"),
        SearchFlag(name="UNSEEN"),
    ]
    assert search(keys, box) == [2]
    assert loads.calls == [2]


def test_search_messages_keeps_what_it_loaded() -> None:
    loads = Loads()
    box = [make(i, "Subject: hi\n\nx\n", loads=loads) for i in (1, 2)]
    found = search_messages(SearchText(name="SUBJECT", value=b"hi"), box)
    assert [m.seq for m in found] == [1, 2]
    assert loads.calls == [1, 2]
    assert found[0].load().root.header.get(b"subject") == b"hi"
    assert loads.calls == [1, 2]  # not parsed again
    unloaded = search_messages(SearchFlag(name="ALL"), box)
    assert unloaded[0] is box[0]
    assert search_messages(SearchSet(set=SequenceSet.parse("2")), box) == [box[1]]


def test_sizes() -> None:
    box = [make(1, "a: b\n\n"), make(2, "a: b\n\n" + "x" * 100)]
    small = box[0].size
    assert search(SearchSize(name="LARGER", size=small), box) == [2]
    assert search(SearchSize(name="LARGER", size=small - 1), box) == [1, 2]
    assert search(SearchSize(name="SMALLER", size=small), box) == []
    assert search(SearchSize(name="SMALLER", size=small + 1), box) == [1]


def test_internal_dates_in_their_own_zone() -> None:
    box = [
        make(1, date=datetime.datetime(2024, 1, 10, 23, 30, tzinfo=EST)),  # 11 Jan in UTC
        make(2, date=datetime.datetime(2024, 1, 11, 0, 30, tzinfo=UTC)),
        make(3, date=datetime.datetime(2024, 1, 12, 8, 0)),  # naive
    ]
    day = datetime.date(2024, 1, 11)
    assert search(SearchDate(name="ON", date=day), box) == [2]
    assert search(SearchDate(name="BEFORE", date=day), box) == [1]
    assert search(SearchDate(name="SINCE", date=day), box) == [2, 3]
    assert search(SearchDate(name="SINCE", date=datetime.date(2024, 1, 13)), box) == []


def test_sent_dates() -> None:
    box = [
        make(1, "Date: Thu, 11 Jan 2024 23:30:00 -0500\n\n"),  # 12 Jan in UTC
        make(2, "Date: 11 Jan 24 01:00 +1400\n\n"),  # obsolete two-digit year
        make(3, "Date: Fri, 12 Jan 2024 10:00:00 GMT\n\n"),
        make(4, "Subject: no date\n\n"),
        make(5, "Date: yesterday, I think\n\n"),
        make(6, "Date: Fri, 31 Feb 2024 10:00:00 +0000\n\n"),
    ]
    day = datetime.date(2024, 1, 11)
    assert search(SearchDate(name="SENTON", date=day), box) == [1, 2]
    assert search(SearchDate(name="SENTSINCE", date=datetime.date(2024, 1, 12)), box) == [3]
    # A missing or unparseable Date: is 1 January 1970, as Dovecot reads it.
    before = SearchDate(name="SENTBEFORE", date=datetime.date(2024, 1, 12))
    assert search(before, box) == [1, 2, 4, 5, 6]
    assert search(SearchDate(name="SENTON", date=datetime.date(1970, 1, 1)), box) == [4, 5, 6]
    assert search(SearchNot(key=SearchDate(name="SENTON", date=day)), box) == [3, 4, 5, 6]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Mon, 1 Jan 2024 10:00:00 +0130", "2024-01-01 10:00:00+01:30"),
        (b"1 Jan 2024 10:00 -0000", "2024-01-01 10:00:00+00:00"),
        (b"  Monday , 01 jan 2024 10 : 00 : 60 -0700 (PDT)", "2024-01-01 10:00:59-07:00"),
        (b"1 Jan 99 10:00:00 EST", "1999-01-01 10:00:00-05:00"),
        (b"1 Jan 49 10:00:00 pdt", "2049-01-01 10:00:00-07:00"),
        (b"1 Jan 101 10:00:00 A", "2001-01-01 10:00:00+00:00"),  # military zones: -0000
        (b"1 Jan 2024 10:00:00", "2024-01-01 10:00:00+00:00"),  # no zone at all
        (b"1 Jan 2024 10:00:00 CET", "2024-01-01 10:00:00+00:00"),
        (b"1 (the first) Jan 2024 10:00:00 +0100", "2024-01-01 10:00:00+01:00"),
        (b"", None),
        (b"01 Jan 2001 00:01+0000", None),  # no space before the zone (Dovecot agrees)
        (b"1 Jan 2024 10:00:00 +9999", None),
        (b"31 Feb 2024 10:00:00 +0000", None),
        (b"1 Foo 2024 10:00:00 +0000", None),
        (b"Jan 1 2024 10:00:00 +0000", None),
        (b"1Jan2024 10:00:00 +0000", None),
        (b"2024-01-01T10:00:00Z", None),
        (b"1 Jan 2024 10:00:00 +0100 trailing words", None),
    ],
)
def test_parse_date(raw: bytes, expected: str | None) -> None:
    when = parse_date(raw)
    assert (None if when is None else str(when)) == expected


def test_sequence_and_uid_sets() -> None:
    box = [make(i, uid=u) for i, u in ((1, 3), (2, 7), (3, 8), (4, 20))]

    def seqs(text: str, *, uid: bool = False) -> list[int]:
        return search(SearchSet(set=SequenceSet.parse(text), uid=uid), box)

    assert seqs("2") == [2]
    assert seqs("*") == [4]
    assert seqs("3:*") == [3, 4]
    assert seqs("*:3") == [3, 4]
    assert seqs("1,4,9") == [1, 4]
    assert seqs("5:9") == []
    assert seqs("7", uid=True) == [2]
    assert seqs("*", uid=True) == [4]
    assert seqs("4:8", uid=True) == [2, 3]
    assert seqs("100:*", uid=True) == [4]  # "*" is the largest UID: the range is 20:100
    assert seqs("1:2,21", uid=True) == []
    assert search(SearchSet(set=SequenceSet.parse("2:3")), box, uid=True) == [7, 8]
    assert search(SearchSet(set=SequenceSet.parse("*")), []) == []


def test_saved_result() -> None:
    box = [make(i, uid=u) for i, u in ((1, 3), (2, 7), (3, 8))]
    for uid in (False, True):
        key = SearchSet(set=SAVED, uid=uid)
        assert search(key, box) == []  # nothing saved yet: "$" is empty
        assert search(key, box, saved=[8, 3, 99, 0]) == [1, 3]
        assert search(key, box, saved=[8, 7, 3]) == [1, 2, 3]
        assert search(key, box, saved=SequenceSet.parse("7:*")) == [2, 3]
        assert search(key, box, saved=()) == []


def test_modseq_and_object_ids() -> None:
    box = [
        make(1, modseq=5, email_id="M1", thread_id="T1"),
        make(2, modseq=9, email_id="M2", thread_id="T1"),
        make(3),
    ]
    assert search(SearchModSeq(modseq=6), box) == [2]
    assert search(SearchModSeq(modseq=5), box) == [1, 2]
    flagged = SearchModSeq(modseq=9, entry=b"/flags/\\draft", entry_type="priv")
    assert search(flagged, box) == [2]  # entry names are ignored (RFC 7162 3.1.5)
    assert search(SearchObjectId(name="EMAILID", id="M2"), box) == [2]
    assert search(SearchObjectId(name="THREADID", id="T1"), box) == [1, 2]
    assert search(SearchObjectId(name="THREADID", id="T2"), box) == []


def test_boolean_structure() -> None:
    seen, draft = SearchFlag(name="SEEN"), SearchFlag(name="DRAFT")
    assert search(SearchOr(left=seen, right=SearchFlag(name="FLAGGED")), FLAGGED_BOX) == [1, 3, 4]
    assert search(SearchNot(key=seen), FLAGGED_BOX) == [2, 4]
    assert search(SearchAnd(keys=(seen, draft)), FLAGGED_BOX) == [3]
    assert search([seen, SearchNot(key=draft)], FLAGGED_BOX) == [1]
    assert search([], FLAGGED_BOX) == [1, 2, 3, 4]
    assert search([seen], FLAGGED_BOX, uid=True) == [10, 30]


def test_uses_modseq() -> None:
    assert not uses_modseq(SearchFlag(name="ALL"))
    assert uses_modseq(SearchModSeq(modseq=1))
    nested = SearchOr(
        left=SearchFlag(name="ALL"),
        right=SearchNot(key=SearchAnd(keys=(SearchFlag(name="SEEN"), SearchModSeq(modseq=2)))),
    )
    assert uses_modseq([SearchFlag(name="SEEN"), nested])
    assert not uses_modseq([SearchNot(key=SearchFlag(name="SEEN"))])


# --- header and body text -----------------------------------------------------------

HEADERS = """\
From: =?utf-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>
To: Ann <ann@example.com>,
 Bob <bob@example.org>
Cc: carol@example.net
Bcc: dave@example.net
Subject: =?iso-8859-1?q?R=E9sum=E9?= of the
  meeting
X-Empty:
List-Id: <list.example.com>

Hello there.
"""


@pytest.mark.parametrize(
    ("key", "hit"),
    [
        (SearchText(name="FROM", value=b"JURGEN"), False),
        (SearchText(name="FROM", value="JÜRGEN".encode()), True),
        (SearchText(name="FROM", value=b"jm@example"), True),
        (SearchText(name="TO", value=b"BOB@"), True),
        (SearchText(name="TO", value=b"carol"), False),
        (SearchText(name="CC", value=b"carol"), True),
        (SearchText(name="BCC", value=b"dave"), True),
        (SearchText(name="BCC", value=b"ann"), False),
        (SearchText(name="SUBJECT", value="résumé of the meeting".encode()), True),
        # the field's white space runs are one space; the string's are kept (Dovecot)
        (SearchText(name="SUBJECT", value="résumé  of the  meeting".encode()), False),
        (SearchText(name="SUBJECT", value=b"hello"), False),
        (SearchText(name="BODY", value=b"hello"), True),
        (SearchText(name="BODY", value=b"meeting"), False),  # BODY skips the header
        (SearchText(name="TEXT", value=b"meeting"), True),
        (SearchText(name="TEXT", value=b"list-id: <list"), True),
        (SearchText(name="TEXT", value=b"there"), True),
        (SearchText(name="TEXT", value=b"absent"), False),
        (SearchHeader(field=b"LIST-ID", value=b"example.com"), True),
        (SearchHeader(field=b"list-id", value=b"example.org"), False),
        (SearchHeader(field=b"list-id", value=b""), True),
        (SearchHeader(field=b"x-empty", value=b""), True),
        (SearchHeader(field=b"x-missing", value=b""), False),
        (SearchHeader(field=b"subject", value="RÉSUMÉ".encode()), True),
    ],
)
def test_header_and_text_keys(key: SearchKey, hit: bool) -> None:
    box = [make(1, HEADERS)]
    assert search(key, box) == ([1] if hit else [])
    assert search(SearchNot(key=key), box) == ([] if hit else [1])


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"a@b", "<a@b>"),
        (
            b"Joe Q. Public <john.q.public@example.com>",
            '"joe q. public" <john.q.public@example.com>',
        ),
        (b"Ann <ann@x>, bob@y (Bob B)", 'ann <ann@x>, "bob b" <bob@y>'),
        (b'"a\\"b" <c@d>', '"a\\"b" <c@d>'),
        (b'x\'y <"we ird"@d>', 'x\'y <"we ird"@d>'),  # "'" is atext
        (b"x'y z <a@d>", '"x\\\'y z" <a@d>'),  # ... escaped once quoted
        (
            b"(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;",
            '"hidden recipients":;',
        ),
        (b"team: a@b, C <c@d>;, e@f", "team: <a@b>, c <c@d>;, <e@f>"),
        (b"undisclosed-recipients:;", "undisclosed-recipients:;"),
        (b'"": x@y;', '"": <x@y>;'),
        (b"Routed <@r1,@r2:joe@example.com>", "routed <@r1,@r2:joe@example.com>"),
        (b"=?utf-8?q?J=C3=B6rg_M?= <j@x>", "jörg m <j@x>"),
        (b"=?utf-8?q?Gr=C3=BCppe?=: j@x;", "grüppe: <j@x>;"),
        (b"jdoe@test   . example", "<jdoe@test.example>"),
        (b"Mary <>", "mary <missing_mailbox@missing_domain>"),
        (b'""@x', '<""@x>'),
        (b"", ""),
    ],
)
def test_address_text(raw: bytes, text: str) -> None:
    assert address_text(raw) == text


def test_address_keys_search_the_normal_form() -> None:
    box = [make(1, "From: joe@example.com (Joe Cool)\nCc: (hidden) list: ;\n\nx\n")]
    assert search(SearchText(name="FROM", value=b"joe cool"), box) == [1]
    assert search(SearchText(name="FROM", value=b"("), box) == []
    assert search(SearchText(name="FROM", value=b'"joe cool" <joe@'), box) == [1]
    assert search(SearchText(name="CC", value=b"hidden"), box) == []
    assert search(SearchHeader(field=b"cc", value=b"hidden"), box) == [1]  # HEADER: as sent
    assert search(SearchHeader(field=b"from", value=b"(joe"), box) == [1]


def test_empty_strings() -> None:
    box = [
        make(1, "From: a@b\n\nx\n"),
        make(2, "Content-Type: image/png\nno colon here\n: empty name\n\nx\n"),
    ]
    assert search(SearchText(name="SUBJECT", value=b""), box) == []  # the field exists?
    assert search(SearchText(name="FROM", value=b""), box) == [1]
    assert search(SearchText(name="BODY", value=b""), box) == [1, 2]  # always, as Dovecot
    assert search(SearchText(name="TEXT", value=b""), box) == [1, 2]
    # a header line without a colon is a field without a name, as Dovecot reads it
    assert search(SearchHeader(field=b"", value=b""), box) == [2]
    assert search(SearchHeader(field=b"", value=b"no colon"), box) == [2]
    assert search(SearchHeader(field=b"", value=b"empty name"), box) == [2]


def _mime(*parts: str) -> str:
    body = "".join(f"--b\n{p}\n" for p in parts)
    return f"Subject: mime\nContent-Type: multipart/mixed; boundary=b\n\npreamble\n{body}--b--\n"


def test_body_decodings() -> None:
    qp = quopri.encodestring("Ærlig talt, kære ven".encode("iso-8859-1")).decode("ascii")
    b64 = base64.b64encode("Доброе утро, Мир".encode()).decode("ascii")
    text = _mime(
        f"Content-Type: text/plain; charset=iso-8859-1\n"
        f"Content-Transfer-Encoding: quoted-printable\n\n{qp}",
        f"Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n{b64}",
        "Content-Type: application/octet-stream\n\nsecret binary words",
        "Content-Type: text/plain; charset=x-mystery\nContent-Transfer-Encoding: x-uue\n\n"
        "raw uuencoded words",
        "Content-Type: message/rfc822\n\nSubject: inner subject\n\ninner body words",
        "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example",
    )
    box = [make(1, text)]

    def body(value: str, name: str = "BODY") -> bool:
        return search(SearchText(name=name, value=value.encode()), box) == [1]  # type: ignore[arg-type]

    assert body("KÆRE VEN")
    assert body("доброе утро, мир")
    assert not body("secret")  # not a text part
    assert body("uuencoded")  # unknown transfer encoding: searched as it is
    assert body("inner body")
    assert not body("inner subject")
    assert body("inner subject", "TEXT")  # TEXT reads encapsulated headers too
    assert body("reporting-mta")
    assert not body("preamble")
    assert body("multipart/mixed", "TEXT")
    assert body("application/octet-stream", "TEXT")  # MIME part headers


def test_search_charsets() -> None:
    box = [make(1, "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\nx\n")]
    key = SearchText(name="SUBJECT", value="grüsse".encode("iso-8859-1"))
    assert search(key, box, charset="ISO-8859-1") == [1]
    assert search(key, box, charset="UTF-8") == []  # not UTF-8: U+FFFD never matches
    assert search(SearchText(name="SUBJECT", value="GRÜSSE".encode()), box) == [1]
    ascii_key = SearchText(name="SUBJECT", value=b"gr")
    assert search(ascii_key, box, charset="US-ASCII") == [1]
    with pytest.raises(UnknownCharset) as info:
        search(ascii_key, box, charset="x-klingon")
    assert info.value.charset == "x-klingon"
    assert info.value.code == BadCharset(charsets=(b"UTF-8", b"US-ASCII"))
    with pytest.raises(UnknownCharset):  # even when no key has a string
        search(SearchFlag(name="ALL"), box, charset="base64")


# --- ESEARCH --------------------------------------------------------------------------


def test_esearch_shapes() -> None:
    numbers = [9, 2, 3, 4, 7, 3]
    assert esearch(numbers) == ESearch(all=SequenceSet.parse("2:4,7,9"))
    assert esearch(numbers, ()) == ESearch(all=SequenceSet.parse("2:4,7,9"))
    assert esearch(numbers, ["min", "MAX", "COUNT"], tag=b"A1", uid=True) == ESearch(
        tag=b"A1", uid=True, min=2, max=9, count=5
    )
    assert esearch([], ["MIN", "MAX", "COUNT", "ALL"], modseq=7) == ESearch(count=0)
    assert esearch([5], ["ALL", "SAVE"], modseq=7) == ESearch(all=SequenceSet.parse("5"), modseq=7)


def test_what_save_keeps() -> None:
    found = [7, 3, 5]
    assert saved_result(found, ["SAVE"]) == [3, 5, 7]
    assert saved_result(found, ["SAVE", "MIN"]) == [3]
    assert saved_result(found, ["save", "max"]) == [7]
    assert saved_result(found, ["SAVE", "MIN", "MAX"]) == [3, 7]
    assert saved_result([4], ["SAVE", "MIN", "MAX"]) == [4]
    assert saved_result(found, ["SAVE", "MIN", "COUNT"]) == [3, 5, 7]
    assert saved_result([], ["SAVE", "MIN"]) == []


# --- properties ---------------------------------------------------------------------

PROPERTY_BOX = [
    make(1, HEADERS, flags=("\\Seen",), modseq=3),
    make(2, _mime("Content-Type: text/plain\n\nhello body"), flags=("\\Recent",)),
    make(3, "Date: Thu, 11 Jan 2024 10:00:00 +0000\nSubject: Re: hello\n\nabc\n", modseq=9),
    make(4, b"\xff\xfe\x00garbage\n\n=?utf-8?B?####?=", flags=("\\Flagged", "k")),
    make(5, "", date=datetime.datetime(2023, 5, 5, tzinfo=UTC)),
]

_WORDS = st.sampled_from([b"", b"hello", b"HELLO", b"abc", b"x", b"meeting", b"\xc3\xbc"])
_LEAVES: st.SearchStrategy[SearchKey] = st.one_of(
    st.builds(SearchFlag, name=st.sampled_from(["ALL", "SEEN", "NEW", "OLD", "FLAGGED"])),
    st.builds(SearchText, name=st.sampled_from(["BODY", "TEXT", "SUBJECT", "FROM"]), value=_WORDS),
    st.builds(SearchHeader, field=st.sampled_from([b"subject", b"x-empty"]), value=_WORDS),
    st.builds(SearchKeyword, keyword=st.just("k"), negate=st.booleans()),
    st.builds(
        SearchDate,
        name=st.sampled_from(["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"]),
        date=st.dates(datetime.date(2023, 1, 1), datetime.date(2025, 1, 1)),
    ),
    st.builds(SearchSize, name=st.sampled_from(["LARGER", "SMALLER"]), size=st.integers(0, 400)),
    st.builds(SearchModSeq, modseq=st.integers(0, 10)),
    st.builds(
        SearchSet,
        set=st.sampled_from([SequenceSet.parse(s) for s in ("1", "2:*", "*", "1,3:4")]),
        uid=st.booleans(),
    ),
)
KEYS: st.SearchStrategy[SearchKey] = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.builds(SearchNot, key=inner),
        st.builds(SearchOr, left=inner, right=inner),
        st.builds(SearchAnd, keys=st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=6,
)
ALL_SEQS = [1, 2, 3, 4, 5]


@given(KEYS)
def test_not_is_the_complement(key: SearchKey) -> None:
    found = search(key, PROPERTY_BOX)
    assert search(SearchNot(key=key), PROPERTY_BOX) == [n for n in ALL_SEQS if n not in found]


@given(KEYS, KEYS)
def test_or_is_the_union_and_and_the_intersection(a: SearchKey, b: SearchKey) -> None:
    left, right = set(search(a, PROPERTY_BOX)), set(search(b, PROPERTY_BOX))
    assert set(search(SearchOr(left=a, right=b), PROPERTY_BOX)) == left | right
    assert set(search([a, b], PROPERTY_BOX)) == left & right


@settings(max_examples=200)
@given(st.binary(max_size=400), KEYS)
def test_never_raises_on_any_message(data: bytes, key: SearchKey) -> None:
    box = [make(1, data), make(2, b"Content-Type: multipart/mixed; boundary=x\n\n--x\n" + data)]
    assert set(search(key, box)) <= {1, 2}


_ADDRESSY = st.lists(
    st.sampled_from([b"a", b"@", b"<", b">", b",", b";", b":", b'"', b"\\", b"(", b")", b" ", b"."])
    | st.binary(max_size=4),
    max_size=30,
).map(b"".join)


@given(_ADDRESSY)
def test_address_text_never_raises(raw: bytes) -> None:
    assert isinstance(address_text(raw), str)


@given(st.binary(max_size=60) | st.from_regex(rb"\A\d{1,2} [A-Z][a-z]{2} \d{2,4} \d\d:\d\d.*"))
def test_parse_date_never_raises(raw: bytes) -> None:
    when = parse_date(raw)
    assert when is None or when.tzinfo is not None
