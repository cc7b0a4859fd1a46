"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 section 3)."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto._util import LocalProtocolError
from mailproto.imap import parse_response
from mailproto.imap._responses import Thread, ThreadNode
from mailproto.message._model import Message, parse_message
from mailproto.message._search import MessageInfo
from mailproto.message._thread import thread

UTC = datetime.UTC
BASE = datetime.datetime(2000, 3, 5, tzinfo=UTC)


def make(
    seq: int,
    subject: str | None = None,
    *,
    minute: int | None = None,
    msgid: str | None = "",
    refs: str | None = None,
    in_reply_to: str | None = None,
    arrival: datetime.datetime | None = None,
) -> MessageInfo:
    lines = []
    if subject is not None:
        lines.append(f"Subject: {subject}")
    if minute is not None:
        when = BASE + datetime.timedelta(minutes=minute)
        lines.append("Date: " + when.strftime("%a, %d %b %Y %H:%M:%S +0000"))
    if msgid == "":
        msgid = f"<{seq}@example>"
    if msgid is not None:
        lines.append(f"Message-ID: {msgid}")
    if refs is not None:
        lines.append(f"References: {refs}")
    if in_reply_to is not None:
        lines.append(f"In-Reply-To: {in_reply_to}")
    data = ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode()

    def load() -> Message:
        return parse_message(data)

    return MessageInfo(
        seq=seq, uid=1000 + seq, internal_date=arrival or BASE, size=len(data), load=load
    )


def threads(line: bytes) -> tuple[ThreadNode, ...]:
    resp = parse_response(b"* THREAD " + line)
    assert isinstance(resp, Thread)
    return resp.threads


def ids(*seqs: int) -> str:
    return " ".join(f"<{s}@example>" for s in seqs)


# The mailbox behind the examples of RFC 5256 section 4 (messages 166-209), written so
# that both answers come out: the dates follow this order, subjects and references
# make the groups and the trees of the two examples.
DATE_ORDER = [
    166, 167, 168, 169, 172, 170, 171, 173, 174, 175, 176, 178, 181, 180, 179, 177, 183,
    182, 188, 184, 185, 186, 187, 189, 190, 191, 192, 193, 194, 195, 196, 197, 198, 199,
    200, 201, 202, 203, 204, 205, 206, 207, 208, 209,
]  # fmt: skip


def rfc_mailbox() -> list[MessageInfo]:
    minute = {seq: i for i, seq in enumerate(DATE_ORDER)}
    spec: dict[int, tuple[str, str | None]] = {}
    for s in (170, 179):  # different subjects, one missing parent
        spec[s] = (f"topic {s}", "<missing-a@example>")
    for s in (174, 175, 176, 178, 180, 181):
        spec[s] = ("Re: party" if s != 174 else "party", "<missing-b@example>")
    for s in (177, 183, 182, 188, 185, 187):
        spec[s] = ("Re: [list] plans", "<missing-c@example>")
    for s in (184, 189):
        spec[s] = ("Re: plans", "<missing-c@example> " + ids(188))
    spec[186] = ("RE: plans", "<missing-c@example> " + ids(185))
    spec[194] = ("budget", "<missing-d@example>")
    spec[195] = ("Re: budget", "<missing-d@example>")
    spec[196] = ("numbers", "<missing-d@example> " + ids(195))  # a new subject
    spec[197] = ("numbers (fwd)", None)
    spec[198] = ("Re: numbers", ids(197))
    spec[200] = ("lunch", None)
    spec[202] = ("Re: lunch", ids(200))
    spec[205] = ("trip", None)
    spec[206] = ("report", ids(205))
    spec[207] = ("Re: report", ids(205, 206))
    box = []
    for seq in range(166, 210):
        subject, refs = spec.get(seq, (f"subject {seq}", None))
        box.append(make(seq, subject, minute=minute[seq], refs=refs))
    return box


# RFC 9051 6.4.? / RFC 5256 4: C: A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000
ORDEREDSUBJECT = (
    b"(166)(167)(168)(169)(172)(170)(171)(173)(174 (175)(176)(178)(181)(180))"
    b"(179)(177 (183)(182)(188)(184)(185)(186)(187)(189))(190)(191)(192)(193)"
    b"(194 195)(196 (197)(198))(199)(200 202)(201)(203)(204)(205)(206 207)(208)(209)"
)
# RFC 5256 4: C: A285 THREAD REFERENCES UTF-8 SINCE 5-MAR-2000 (messages up to 208)
REFERENCES = (
    b"(166)(167)(168)(169)(172)((170)(179))(171)(173)((174)(175)(176)(178)(181)(180))"
    b"((177)(183)(182)(188 (184)(189))(185 186)(187))(190)(191)(192)(193)((194)(195 196))"
    b"(197 198)(199)(200 202)(201)(203)(204)(205 206 207)(208)"
)


def test_rfc5256_orderedsubject_example() -> None:
    assert thread("ORDEREDSUBJECT", rfc_mailbox()) == threads(ORDEREDSUBJECT)


def test_rfc5256_references_example() -> None:
    box = [m for m in rfc_mailbox() if m.seq <= 208]
    assert thread("references", box) == threads(REFERENCES)


def test_uid_numbers_and_input_order() -> None:
    box = [make(2, "a", minute=2), make(1, "Re: a", minute=1, refs=ids(2))]
    assert thread("REFERENCES", box, uid=True) == threads(b"(1002 1001)")
    assert thread("ORDEREDSUBJECT", box, uid=True) == threads(b"(1001 1002)")


def test_unknown_algorithm() -> None:
    with pytest.raises(LocalProtocolError):
        thread("REFS", [])
    assert thread("REFERENCES", []) == ()


def test_orderedsubject_groups_missing_subjects() -> None:
    box = [make(1, None, minute=3), make(2, "", minute=1), make(3, "x", minute=2)]
    assert thread("ORDEREDSUBJECT", box) == threads(b"(2 1)(3)")


def test_references_chain_and_truncated_references() -> None:
    box = [
        make(1, "a", minute=1),
        make(2, "Re: a", minute=2, refs=ids(1)),
        make(3, "Re: a", minute=3, refs=ids(1, 2)),
        make(4, "Re: a", minute=4, refs=ids(3)),  # truncated: 3 is still its parent
        make(5, "Re: a", minute=5, refs=ids(1)),
    ]
    assert thread("REFERENCES", box) == threads(b"(1 (2 3 4)(5))")


def test_own_references_override_an_earlier_link() -> None:
    # 2 says 3 is a child of 1; 3 itself says its parent is 9 (missing): step 1.B
    # breaks the first link.
    box = [
        make(1, "a", minute=1),
        make(2, "c", minute=2, refs=ids(1, 3)),
        make(3, "b", minute=3, refs="<9@example>"),
    ]
    assert thread("REFERENCES", box) == threads(b"(1)(3 2)")
    box[2] = make(3, "b", minute=3)  # no references: no parent at all
    assert thread("REFERENCES", box) == threads(b"(1)(3 2)")
    box[2] = make(3, "b", minute=3, refs=ids(2))  # would make a loop: the link stays
    assert thread("REFERENCES", box) == threads(b"(1 3 2)")


def test_in_reply_to_when_references_has_no_id() -> None:
    box = [
        make(1, "a", minute=1),
        make(2, "b", minute=2, refs="junk", in_reply_to="<1@example> <9@example>"),
        make(3, "c", minute=3, in_reply_to="<2@example>"),
        make(4, "d", minute=4, refs=ids(1), in_reply_to="<3@example>"),
    ]
    assert thread("REFERENCES", box) == threads(b"(1 (2 3)(4))")


def test_duplicate_and_missing_message_ids() -> None:
    box = [
        make(1, "a", minute=1, msgid="<same@x>"),
        make(2, "b", minute=2, msgid="<same@x>"),  # a duplicate: gets a unique id
        make(3, "c", minute=3, refs="<same@x>"),  # so this replies to 1
        make(4, "d", minute=4, msgid=None),
        make(5, "e", minute=5, msgid="no brackets"),
        make(6, "f", minute=6, msgid="<\r\n 6@example>", refs=ids(4)),
        make(7, "g", minute=7, refs=ids(6)),
    ]
    assert thread("REFERENCES", box) == threads(b"(1 3)(2)(4)(5)(6 7)")


def test_loops_are_not_made() -> None:
    box = [
        make(1, "a", minute=1, refs=ids(2)),
        make(2, "b", minute=2, refs=ids(1)),  # would make a loop: stays a root
        make(3, "c", minute=3, refs=ids(3)),  # references itself
        make(4, "d", minute=4, refs=ids(5, 4, 5)),
        make(5, "e", minute=5),
    ]
    assert thread("REFERENCES", box) == threads(b"(2 1)(3)(5 4)")


def test_dummies_pruned_and_kept() -> None:
    box = [
        make(1, "x", minute=1, refs="<root@m> <mid@m>"),  # two dummies above it
        make(2, "y", minute=2, refs="<root@m> <mid@m>"),
        make(3, "z", minute=3, refs="<root@m> <other@m>"),
        make(4, "w", minute=4, refs="<lone@m> <single@m>"),  # one child: promoted
        make(5, "v", minute=5, refs="<empty@m>"),
    ]
    # <mid@m> and <other@m> are spliced into <root@m>, which keeps its three children
    assert thread("REFERENCES", box) == threads(b"((1)(2)(3))(4)(5)")


def test_subject_merge_rules() -> None:
    box = [
        make(1, "plan", minute=1),
        make(2, "Re: plan", minute=2),  # a reply joins the thread of a non-reply
        make(3, "news", minute=3),
        make(4, "news", minute=4),  # neither replies: a dummy holds both
        make(5, "Re: trip", minute=5),
        make(6, "trip", minute=6),  # the non-reply takes the table; 5 goes under it
        make(7, "Re: pets", minute=7, refs="<gone@m>"),
        make(8, "pets", minute=8, refs="<gone2@m>"),
        make(9, "Re: pets", minute=9, refs="<gone2@m>"),  # two dummies with "pets"
        make(10, "Re: pets", minute=10, refs="<gone@m>"),
        make(11, "Re: pets", minute=11),  # a message under a dummy
    ]
    assert thread("REFERENCES", box) == threads(b"(1 2)((3)(4))(6 5)((7)(8)(9)(10)(11))")


def test_replies_both_get_a_dummy() -> None:
    box = [make(1, "Re: x", minute=1), make(2, "Fwd: x", minute=2), make(3, "x", minute=0)]
    assert thread("REFERENCES", box) == threads(b"(3 (1)(2))")
    box = [make(1, "Re: x", minute=1), make(2, "Fwd: x", minute=2)]
    assert thread("REFERENCES", box) == threads(b"((1)(2))")


def test_dates_fall_back_to_internaldate_and_sequence() -> None:
    late = BASE + datetime.timedelta(days=1)
    box = [
        make(1, "a", arrival=late),
        make(2, "b", minute=5),
        make(3, "c", minute=5),
        make(4, "d"),  # no Date: its INTERNALDATE, BASE
    ]
    assert thread("REFERENCES", box) == threads(b"(4)(2)(3)(1)")
    assert thread("ORDEREDSUBJECT", box) == threads(b"(4)(2)(3)(1)")


def test_long_chain_needs_no_recursion() -> None:
    n = 5000
    box = [make(1, "start", minute=0)]
    box += [make(i, "Re: start", minute=i, refs=ids(i - 1)) for i in range(2, n + 1)]
    (only,) = thread("REFERENCES", box)
    assert only.messages == tuple(range(1, n + 1))
    forks = [make(1, "s", minute=0)]
    for i in range(2, 3000, 2):  # every other message forks: deep branching
        forks.append(make(i, "Re: s", minute=i, refs=ids(i - 2 if i > 2 else 1)))
        forks.append(make(i + 1, "Re: s", minute=i + 1, refs=ids(i - 2 if i > 2 else 1)))
    (tree,) = thread("REFERENCES", forks)
    assert tree.messages == (1,)


_IDS = st.sampled_from(["<1@x>", "<2@x>", "<3@x>", "<4@x>", "<9@x>", ""])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "Re: a", "b", "Fwd: b", "", None]),
            st.integers(0, 3),
            _IDS,
            st.lists(_IDS, max_size=3),
        ),
        max_size=8,
    )
)
def test_every_message_appears_once(
    spec: list[tuple[str | None, int, str, list[str]]],
) -> None:
    box = [
        make(i + 1, subject, minute=minute, msgid=msgid or None, refs=" ".join(refs) or None)
        for i, (subject, minute, msgid, refs) in enumerate(spec)
    ]
    for algorithm in ("REFERENCES", "ORDEREDSUBJECT"):
        seen: list[int] = []
        stack = list(thread(algorithm, box))
        while stack:
            node = stack.pop()
            seen += node.messages
            stack += node.children
        assert sorted(seen) == [m.seq for m in box]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=60), st.binary(max_size=60)), max_size=6))
def test_thread_never_raises(fields: list[tuple[bytes, bytes]]) -> None:
    box = []
    for i, (a, b) in enumerate(fields, 1):
        data = b"Message-ID: <%b>\r\nReferences: %b\r\nIn-Reply-To: %b\r\nSubject: %b\r\n\r\n" % (
            a, b, a, b,
        )  # fmt: skip
        box.append(
            MessageInfo(
                seq=i, uid=i, internal_date=BASE, size=len(data),
                load=lambda data=data: parse_message(data),  # type: ignore[misc]
            )
        )  # fmt: skip
    for algorithm in ("REFERENCES", "ORDEREDSUBJECT"):
        assert isinstance(thread(algorithm, box), tuple)
