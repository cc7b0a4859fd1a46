"""Property tests for the IMAP response codec: round trips over generated responses, and
fuzzing (arbitrary bytes give a Response or a ParseError, nothing else)."""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto.imap import _responses as r
from mailproto.imap._grammar import ParseError, SequenceSet, dump
from mailproto.imap._response_codec import QUIRKS, format_response, parse_response
from mailproto.imap._types import Section

ATOM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefxyz0123456789-_.=+$!&'"
atoms = st.text(ATOM_CHARS, min_size=1, max_size=8)
texts = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"), max_size=20
).filter(lambda t: not t.startswith("["))
nz = st.integers(1, 2**32 - 1)
n64 = st.integers(0, 2**63 - 1)
nz64 = st.integers(1, 2**63 - 1)
# strings from the wire: any octets but NUL (CR/LF force a literal)
# plain strings (quoted without escapes: the parser's fast paths) and any octets
PLAIN = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\')
strings = st.text(PLAIN, max_size=12).map(str.encode) | st.binary(max_size=12).filter(
    lambda b: b"\x00" not in b
)
nstrings = st.none() | strings
flags = st.lists(
    st.sampled_from(["\\Seen", "\\Deleted", "$Forwarded", "\\Answered", "Junk"]),
    max_size=3,
    unique=True,
).map(tuple)
mailboxes = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"), max_size=10
).map(lambda m: "INBOX" if m.upper() == "INBOX" else m)
sequence_sets = st.lists(st.tuples(st.none() | nz, st.none() | nz), min_size=1, max_size=3).map(
    lambda rs: SequenceSet(tuple(rs))
)
uid_sets = st.lists(st.tuples(nz, nz), min_size=1, max_size=3).map(
    lambda rs: SequenceSet(tuple(rs))
)
object_ids = st.text("abcXYZ019_-", min_size=1, max_size=10)
datetimes = st.builds(
    lambda d, off: d.replace(
        microsecond=0, tzinfo=datetime.timezone(datetime.timedelta(minutes=off))
    ),
    st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31)),
    st.integers(-1439, 1439),
)

codes: st.SearchStrategy[r.Code] = st.one_of(
    st.sampled_from([cls() for cls in r.BARE_CODES.values()]),
    st.builds(r.BadCharset, charsets=st.lists(atoms.map(str.encode), max_size=2).map(tuple)),
    st.builds(r.CapabilityCode, capabilities=st.lists(atoms, min_size=1, max_size=3).map(tuple)),
    st.builds(r.PermanentFlags, flags=flags),
    st.builds(r.UidNext, value=nz),
    st.builds(r.UidValidity, value=nz),
    st.builds(r.Unseen, value=nz),
    st.builds(r.HighestModSeq, value=nz64),
    st.builds(r.MailboxIdCode, value=object_ids),
    st.builds(r.Modified, uids=sequence_sets),
    st.builds(r.AppendUid, uidvalidity=nz, uids=sequence_sets),
    st.builds(r.CopyUid, uidvalidity=nz, source=sequence_sets, destination=sequence_sets),
    st.builds(
        r.OtherCode,
        name=atoms.filter(lambda a: a.upper() not in r.KNOWN_CODES),
        text=st.none()
        | st.binary(min_size=1, max_size=8).filter(lambda b: not any(c in b for c in b"\r\n]\x00")),
    ),
)

addresses = st.none() | st.lists(
    st.builds(r.Address, name=nstrings, adl=nstrings, mailbox=nstrings, host=nstrings),
    min_size=1,
    max_size=2,
).map(tuple)
envelopes = st.builds(
    r.Envelope,
    date=nstrings,
    subject=nstrings,
    from_=addresses,
    sender=addresses,
    reply_to=addresses,
    to=addresses,
    cc=addresses,
    bcc=addresses,
    in_reply_to=nstrings,
    message_id=nstrings,
)
params = st.none() | st.lists(st.tuples(strings, strings), min_size=1, max_size=2).map(tuple)
ext_values: st.SearchStrategy[r.ExtensionValue] = st.recursive(
    nstrings | n64, lambda inner: st.lists(inner, min_size=1, max_size=3).map(tuple), max_leaves=4
)


@st.composite
def extension(draw: st.DrawFn, extensible: bool) -> dict[str, Any]:
    n = draw(st.integers(0, 4)) if extensible else 0
    out: dict[str, Any] = {"ext_fields": n}
    if n >= 2:
        out["disposition"] = draw(st.none() | st.builds(r.Disposition, type=strings, params=params))
    if n >= 3:
        out["language"] = draw(st.none() | st.lists(strings, min_size=1, max_size=2).map(tuple))
    if n >= 4:
        out["location"] = draw(nstrings)
        out["extensions"] = tuple(draw(st.lists(ext_values, max_size=2)))
    return out


def bodies(extensible: bool) -> st.SearchStrategy[r.BodyType]:
    @st.composite
    def single(draw: st.DrawFn, children: st.SearchStrategy[r.BodyType] | None) -> r.BodyType:
        ext = draw(extension(extensible))
        fields: dict[str, Any] = {
            "params": draw(params),
            "id": draw(nstrings),
            "description": draw(nstrings),
            "encoding": draw(strings),
            "size": draw(st.integers(0, 2**32 - 1)),
        }
        if ext["ext_fields"]:
            fields["md5"] = draw(nstrings)
        kind = draw(
            st.sampled_from(
                ["basic", "text", "message"] if children is not None else ["basic", "text"]
            )
        )
        if kind == "text":
            return r.BodyText(subtype=draw(strings), lines=draw(n64), **fields, **ext)
        if kind == "message" and children is not None:
            return r.BodyMessage(
                subtype=draw(st.sampled_from([b"RFC822", b"global"])),
                envelope=draw(envelopes),
                body=draw(children),
                lines=draw(n64),
                **fields,
                **ext,
            )
        mtype = draw(strings.filter(lambda t: t.upper() not in (b"TEXT", b"MESSAGE")))
        return r.BodyBasic(media_type=mtype, subtype=draw(strings), **fields, **ext)

    @st.composite
    def multipart(draw: st.DrawFn, children: st.SearchStrategy[r.BodyType]) -> r.BodyType:
        ext = draw(extension(extensible))
        p = draw(params) if ext["ext_fields"] else None
        parts = tuple(draw(st.lists(children, min_size=1, max_size=3)))
        return r.BodyMultipart(parts=parts, subtype=draw(strings), params=p, **ext)

    return st.recursive(single(None), lambda kids: single(kids) | multipart(kids), max_leaves=4)


sections = st.one_of(
    st.just(Section()),
    st.builds(Section, part=st.lists(st.integers(1, 99), min_size=1, max_size=3).map(tuple)),
    st.builds(lambda t: Section((), t), st.sampled_from(["HEADER", "TEXT"])),
    st.builds(
        lambda p: Section(p, "MIME"), st.lists(st.integers(1, 9), min_size=1, max_size=2).map(tuple)
    ),
    st.builds(
        lambda f: Section((), "HEADER.FIELDS.NOT", f),
        st.lists(atoms.map(str.encode), min_size=1, max_size=2).map(tuple),
    ),
)

fetch_attributes: st.SearchStrategy[r.FetchAttribute] = st.one_of(
    st.builds(r.FetchFlags, flags=flags),
    st.builds(r.Uid, value=nz),
    st.builds(r.Rfc822Size, value=n64),
    st.builds(r.InternalDate, value=datetimes),
    st.builds(r.SaveDate, value=st.none() | datetimes),
    st.builds(r.EnvelopeItem, envelope=envelopes),
    st.builds(r.BodyStructure, body=bodies(True)),
    st.builds(r.Body, body=bodies(False)),
    st.builds(r.BodySection, section=sections, origin=st.none() | n64, data=nstrings),
    st.builds(
        r.Binary,
        part=st.lists(nz, max_size=2).map(tuple),
        origin=st.none() | n64,
        data=st.none() | st.binary(max_size=10),
    ),
    st.builds(r.BinarySize, part=st.lists(nz, max_size=2).map(tuple), size=n64),
    st.builds(r.Rfc822, data=nstrings),
    st.builds(r.Rfc822Header, data=nstrings),
    st.builds(r.Rfc822Text, data=nstrings),
    st.builds(r.ModSeq, value=nz64),
    st.builds(r.EmailId, value=object_ids),
    st.builds(r.ThreadId, value=st.none() | object_ids),
)

delimiters = st.none() | st.sampled_from(["/", ".", "\\", '"'])
threads: st.SearchStrategy[r.ThreadNode] = st.recursive(
    st.builds(r.ThreadNode, messages=st.lists(nz, min_size=1, max_size=3).map(tuple)),
    lambda kids: st.builds(
        r.ThreadNode,
        messages=st.lists(nz, max_size=2).map(tuple),
        children=st.lists(kids, min_size=2, max_size=3).map(tuple),
    ),
    max_leaves=6,
)
namespace_lists = st.none() | st.lists(
    st.builds(
        r.NamespaceEntry,
        prefix=mailboxes,
        delimiter=delimiters,
        extensions=st.lists(
            st.tuples(strings, st.lists(strings, min_size=1, max_size=2).map(tuple)), max_size=1
        ).map(tuple),
    ),
    min_size=1,
    max_size=2,
).map(tuple)
status_items = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["MESSAGES", "SIZE", "DELETED", "HIGHESTMODSEQ"]), n64),
        st.tuples(
            st.sampled_from(["UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "APPENDLIMIT"]),
            st.integers(0, 2**32 - 1),
        ),
        st.tuples(st.just("MAILBOXID"), object_ids),
    ),
    max_size=4,
).map(tuple)

responses: st.SearchStrategy[r.Response] = st.one_of(
    st.builds(
        r.Tagged,
        tag=atoms.filter(lambda t: "+" not in t),
        status=st.sampled_from(["OK", "NO", "BAD"]),
        code=st.none() | codes,
        text=texts,
    ),
    st.builds(
        r.Untagged,
        status=st.sampled_from(["OK", "NO", "BAD", "PREAUTH", "BYE"]),
        code=st.none() | codes,
        text=texts,
    ),
    st.builds(r.Continuation, code=st.none() | codes, text=texts),
    st.builds(r.Capability, capabilities=st.lists(atoms, min_size=1, max_size=3).map(tuple)),
    st.builds(r.Enabled, capabilities=st.lists(atoms, max_size=3).map(tuple)),
    st.builds(r.Flags, flags=flags),
    st.sampled_from([r.List, r.Lsub]).flatmap(
        lambda cls: st.builds(
            cls,
            attributes=flags,
            delimiter=delimiters,
            mailbox=mailboxes,
            childinfo=st.none() | st.lists(strings, min_size=1, max_size=2).map(tuple),
            oldname=st.none() | mailboxes,
        )
    ),
    st.builds(r.Status, mailbox=mailboxes, items=status_items),
    st.sampled_from([r.Search, r.Sort]).flatmap(
        lambda cls: st.builds(
            cls, numbers=st.lists(nz, min_size=1, max_size=4).map(tuple), modseq=st.none() | nz64
        )
    ),
    st.builds(r.Search),
    st.builds(
        r.ESearch,
        tag=st.none() | strings.filter(lambda b: b"\r" not in b and b"\n" not in b),
        uid=st.booleans(),
        min=st.none() | nz,
        max=st.none() | nz,
        count=st.none() | st.integers(0, 2**32 - 1),
        all=st.none() | sequence_sets,
        modseq=st.none() | nz64,
    ),
    st.builds(r.Exists, count=st.integers(0, 2**32 - 1)),
    st.builds(r.Recent, count=st.integers(0, 2**32 - 1)),
    st.builds(r.Expunge, seq=nz),
    st.builds(r.Vanished, earlier=st.booleans(), uids=uid_sets),
    st.builds(r.Namespace, personal=namespace_lists, other=namespace_lists, shared=namespace_lists),
    st.builds(
        r.Id,
        params=st.none()
        | st.lists(st.tuples(strings, nstrings), min_size=1, max_size=3).map(tuple),
    ),
    st.builds(
        r.Quota,
        root=strings,
        resources=st.lists(
            st.builds(r.QuotaResource, name=atoms, usage=n64, limit=n64), min_size=1, max_size=2
        ).map(tuple),
    ),
    st.builds(r.QuotaRoot, mailbox=mailboxes, roots=st.lists(strings, max_size=2).map(tuple)),
    st.builds(r.Thread, threads=st.lists(threads, max_size=3).map(tuple)),
    st.builds(
        r.Fetch, seq=nz, attributes=st.lists(fetch_attributes, min_size=1, max_size=4).map(tuple)
    ),
)


@settings(max_examples=600)
@given(responses, st.booleans())
def test_round_trip(resp: r.Response, utf8: bool) -> None:
    wire = dump(format_response(resp, utf8=utf8))
    assert wire.endswith(b"\r\n")
    assert parse_response(wire, utf8=utf8) == resp
    # and the canonical form is a fixed point
    assert dump(format_response(parse_response(wire, utf8=utf8), utf8=utf8)) == wire


@settings(max_examples=300)
@given(responses)
def test_round_trip_without_crlf(resp: r.Response) -> None:
    wire = dump(format_response(resp))
    assert parse_response(wire[:-2]) == resp


@settings(max_examples=400)
@given(
    st.builds(
        r.Fetch, seq=nz, attributes=st.lists(fetch_attributes, min_size=1, max_size=3).map(tuple)
    )
)
def test_fast_paths_agree_with_general_path(resp: r.Fetch) -> None:
    # "nil-string" and "unescaped-quotes" switch the envelope and body structure fast
    # paths off; on canonical output they change nothing else.
    wire = dump(format_response(resp))
    slow = parse_response(wire, quirks=frozenset({"nil-string", "unescaped-quotes"}))
    assert parse_response(wire) == slow == resp


def _check_fuzz(data: bytes, quirks: frozenset[str]) -> None:
    try:
        resp = parse_response(data, quirks=quirks)
    except ParseError:
        return
    assert isinstance(resp, r.Response)
    # whatever parsed is a valid value, so it can be written and read back
    wire = dump(format_response(resp))
    assert parse_response(wire) == resp


@settings(max_examples=800)
@given(st.binary(max_size=60), st.sets(st.sampled_from(sorted(QUIRKS))).map(frozenset))
def test_fuzz_arbitrary_bytes(data: bytes, quirks: frozenset[str]) -> None:
    _check_fuzz(data, quirks)


PREFIXES = [
    b"* ",
    b"A1 OK ",
    b"+ ",
    b"* 1 FETCH (",
    b"* OK [",
    b"* LIST (",
    b"* STATUS x (",
    b"* ESEARCH ",
    b"* THREAD ",
    b"* NAMESPACE ",
    b"* 1 FETCH (BODYSTRUCTURE (",
    b"* 1 FETCH (ENVELOPE (",
    b"* ID (",
    b"* QUOTA x (",
]
TOKENS = [
    b" ",
    b"(",
    b")",
    b"NIL",
    b'"a"',
    b"1",
    b"0",
    b"{1}\r\nx",
    b"~{1}\r\n\x00",
    b"[",
    b"]",
    b"BODY",
    b"BODY[]",
    b"UID",
    b"FLAGS",
    b"\\Seen",
    b'"TEXT"',
    b'"MESSAGE"',
    b'"RFC822"',
    b"-1",
    b"*",
    b":",
    b",",
    b"MODSEQ",
    b"ALL",
    b'"\\""',
    b"CHILDINFO",
    b"<1>",
    b"TAG",
    b"EARLIER",
    b"BINARY[1]",
    b"OK",
    b'"',
    b"MIN",
]


@settings(max_examples=1500)
@given(
    st.sampled_from(PREFIXES),
    st.lists(st.sampled_from(TOKENS), max_size=25),
    st.sets(st.sampled_from(sorted(QUIRKS))).map(frozenset),
)
def test_fuzz_token_soup(prefix: bytes, tokens: list[bytes], quirks: frozenset[str]) -> None:
    _check_fuzz(prefix + b"".join(tokens), quirks)


@settings(max_examples=300)
@given(responses, st.data())
def test_fuzz_mutated_responses(resp: r.Response, data: st.DataObject) -> None:
    wire = bytearray(dump(format_response(resp)))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    _check_fuzz(bytes(wire), frozenset())
