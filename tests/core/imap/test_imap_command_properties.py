"""Property tests of the command codec: round trips over generated commands, fuzzing."""

from __future__ import annotations

import datetime
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from mailproto.imap import _commands as c
from mailproto.imap import _search as s
from mailproto.imap._command_codec import CommandParseError, format_command, parse_command
from mailproto.imap._grammar import LiteralFragment, ParseError, SequenceSet, dump
from mailproto.imap._types import Section

ATOM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!#$&'+,/:;<=>?@^`|~["
tags = st.text(ATOM_CHARS.replace("+", "") + "]", min_size=1, max_size=8)
atoms = st.text(ATOM_CHARS, min_size=1, max_size=10)
upper_atoms = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1, max_size=10)
wire_strings = st.binary(max_size=40).filter(lambda b: b"\x00" not in b)
mailboxes = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r\n"), max_size=12
).map(lambda n: "INBOX" if n.upper() == "INBOX" else n)
numbers = st.integers(1, 4294967295)
modseqs = st.integers(1, 9223372036854775807)
seq_numbers = st.one_of(st.none(), numbers)
sequence_sets = st.lists(st.tuples(seq_numbers, seq_numbers), min_size=1, max_size=4).map(
    lambda r: SequenceSet(tuple(r))
)
seq_or_saved = st.one_of(sequence_sets, st.just(s.SAVED))
flags = st.one_of(
    st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]),
    atoms.filter(lambda a: "]" not in a and a != "\\"),
    atoms.map(lambda a: "\\" + a),
).filter(lambda f: "]" not in f and f != "\\Recent")
keywords = atoms.filter(lambda a: "]" not in a)
dates = st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 31))
date_times = st.builds(
    lambda d, off: d.replace(
        microsecond=0, tzinfo=datetime.timezone(datetime.timedelta(minutes=off))
    ),
    st.datetimes(datetime.datetime(1, 1, 2), datetime.datetime(9999, 12, 30)),
    st.integers(-1439, 1439),
)

leaf_keys: st.SearchStrategy[s.SearchKey] = st.one_of(
    st.builds(s.SearchFlag, name=st.sampled_from(s._FLAG_KEYS)),
    st.builds(s.SearchText, name=st.sampled_from(s._TEXT_KEYS), value=wire_strings),
    st.builds(s.SearchHeader, field=wire_strings, value=wire_strings),
    st.builds(s.SearchKeyword, keyword=keywords, negate=st.booleans()),
    st.builds(s.SearchDate, name=st.sampled_from(s._DATE_KEYS), date=dates),
    st.builds(
        s.SearchSize, name=st.sampled_from(["LARGER", "SMALLER"]), size=st.integers(0, 4294967295)
    ),
    st.builds(s.SearchSet, set=seq_or_saved, uid=st.booleans()),
    st.builds(s.SearchModSeq, modseq=st.integers(0, 9223372036854775807)),
    st.builds(
        s.SearchModSeq,
        modseq=st.integers(0, 9223372036854775807),
        entry=flags.map(lambda f: b"/flags/" + f.encode()),
        entry_type=st.sampled_from(["priv", "shared", "all"]),
    ),
    st.builds(
        s.SearchObjectId,
        name=st.sampled_from(["EMAILID", "THREADID"]),
        id=st.from_regex(r"\A[A-Za-z0-9_-]{1,20}\Z"),
    ),
)
search_keys = st.recursive(
    leaf_keys,
    lambda inner: st.one_of(
        st.builds(s.SearchNot, key=inner),
        st.builds(s.SearchOr, left=inner, right=inner),
        st.builds(s.SearchAnd, keys=st.lists(inner, min_size=1, max_size=3).map(tuple)),
    ),
    max_leaves=8,
)
criteria = st.lists(search_keys, min_size=1, max_size=3).map(tuple)

parts = st.lists(st.integers(1, 4294967295), max_size=3).map(tuple)
partials = st.one_of(st.none(), st.tuples(st.integers(0, 2**63 - 1), st.integers(1, 2**63 - 1)))
field_names = st.binary(min_size=1, max_size=8).filter(
    lambda b: all(0x21 <= x <= 0x7E and x != 0x3A for x in b)
)
sections = st.one_of(
    st.builds(Section, part=parts),
    st.builds(Section, part=parts, text=st.sampled_from(["HEADER", "TEXT"])),
    st.builds(Section, part=parts.filter(bool), text=st.just("MIME")),
    st.builds(
        Section,
        part=parts,
        text=st.sampled_from(["HEADER.FIELDS", "HEADER.FIELDS.NOT"]),
        fields=st.lists(field_names, min_size=1, max_size=3).map(tuple),
    ),
)
fetch_items: st.SearchStrategy[c.FetchItem] = st.one_of(
    st.builds(c.FetchAttr, name=st.sampled_from(c.FETCH_ATTRS)),
    st.builds(c.FetchBody, section=sections, partial=partials, peek=st.booleans()),
    st.builds(c.FetchBinary, part=parts, partial=partials, peek=st.booleans()),
    st.builds(c.FetchBinarySize, part=parts),
)


@st.composite
def fetches(draw: st.DrawFn) -> c.Fetch:
    uid = draw(st.booleans())
    changed = draw(st.one_of(st.none(), st.integers(0, 2**63 - 1)))
    return c.Fetch(
        tag=draw(tags),
        uid=uid,
        sequence_set=draw(seq_or_saved),
        items=draw(
            st.one_of(
                st.sampled_from(["ALL", "FAST", "FULL"]),
                fetch_items,
                st.lists(fetch_items, min_size=1, max_size=4).map(tuple),
            )
        ),
        changedsince=changed,
        vanished=uid and changed is not None and draw(st.booleans()),
    )


qresyncs = st.builds(
    c.QResync,
    uidvalidity=numbers,
    modseq=modseqs,
    known_uids=st.one_of(st.none(), sequence_sets),
    seq_match=st.one_of(st.none(), st.tuples(sequence_sets, sequence_sets)),
)
status_items = st.lists(st.sampled_from(c._STATUS_ITEMS), min_size=1, max_size=4, unique=True).map(
    tuple
)
list_returns = (
    st.lists(
        st.one_of(
            st.sampled_from(["SUBSCRIBED", "CHILDREN", "SPECIAL-USE"]),
            st.builds(c.ListReturnStatus, items=status_items),
        ),
        max_size=3,
    )
    .filter(lambda r: len({x if isinstance(x, str) else "S" for x in r}) == len(r))
    .map(tuple)
)
messages = st.builds(
    c.AppendMessage,
    message=st.binary(max_size=30),
    flags=st.one_of(st.none(), st.lists(flags, max_size=3).map(tuple)),
    internal_date=st.one_of(st.none(), date_times),
    binary=st.just(True),
) | st.builds(
    c.AppendMessage,
    message=wire_strings,
    flags=st.one_of(st.none(), st.lists(flags, max_size=3).map(tuple)),
    internal_date=st.one_of(st.none(), date_times),
)

commands: st.SearchStrategy[c.Command] = st.one_of(
    *[
        st.builds(k, tag=tags)
        for k in (
            c.Noop,
            c.Capability,
            c.Logout,
            c.StartTLS,
            c.Namespace,
            c.Idle,
            c.Check,
            c.Close,
            c.Unselect,
        )
    ],
    st.builds(
        c.Authenticate,
        tag=tags,
        mechanism=upper_atoms,
        initial_response=st.one_of(st.none(), st.binary(max_size=20)),
    ),
    st.builds(c.Login, tag=tags, username=wire_strings, password=wire_strings),
    st.builds(c.Enable, tag=tags, capabilities=st.lists(atoms, min_size=1, max_size=3).map(tuple)),
    st.builds(
        c.Select,
        tag=tags,
        mailbox=mailboxes,
        condstore=st.booleans(),
        qresync=st.one_of(st.none(), qresyncs),
    ),
    st.builds(
        c.Examine,
        tag=tags,
        mailbox=mailboxes,
        condstore=st.booleans(),
        qresync=st.one_of(st.none(), qresyncs),
    ),
    st.builds(
        c.Create,
        tag=tags,
        mailbox=mailboxes,
        special_use=st.one_of(st.none(), st.lists(flags, max_size=2).map(tuple)),
    ),
    st.builds(c.Delete, tag=tags, mailbox=mailboxes),
    st.builds(c.Rename, tag=tags, mailbox=mailboxes, new_name=mailboxes),
    st.builds(c.Subscribe, tag=tags, mailbox=mailboxes),
    st.builds(c.Unsubscribe, tag=tags, mailbox=mailboxes),
    st.builds(
        c.List,
        tag=tags,
        reference=mailboxes,
        patterns=st.lists(mailboxes, min_size=1, max_size=3).map(tuple),
        selection=st.one_of(
            st.none(),
            st.lists(
                st.sampled_from(["SUBSCRIBED", "REMOTE", "SPECIAL-USE"]), unique=True, max_size=3
            ).map(tuple),
        ),
        return_options=st.one_of(st.none(), list_returns),
    ),
    st.builds(c.Lsub, tag=tags, reference=mailboxes, pattern=mailboxes),
    st.builds(c.Status, tag=tags, mailbox=mailboxes, items=status_items),
    st.builds(
        c.Append,
        tag=tags,
        mailbox=mailboxes,
        messages=st.lists(messages, min_size=1, max_size=3).map(tuple),
    ),
    st.builds(c.Expunge, tag=tags),
    st.builds(c.Expunge, tag=tags, uid=st.just(True), sequence_set=seq_or_saved),
    st.builds(
        c.Search,
        tag=tags,
        uid=st.booleans(),
        criteria=criteria,
        charset=st.one_of(st.none(), atoms),
        return_options=st.one_of(
            st.none(),
            st.lists(st.sampled_from(["MIN", "MAX", "ALL", "COUNT", "SAVE"]), unique=True).map(
                tuple
            ),
        ),
    ),
    fetches(),
    st.builds(
        c.Store,
        tag=tags,
        uid=st.booleans(),
        sequence_set=seq_or_saved,
        action=st.sampled_from(["set", "add", "remove"]),
        flags=st.lists(flags, max_size=3).map(tuple),
        silent=st.booleans(),
        unchangedsince=st.one_of(st.none(), st.integers(0, 2**63 - 1)),
    ),
    st.builds(c.Copy, tag=tags, uid=st.booleans(), sequence_set=seq_or_saved, mailbox=mailboxes),
    st.builds(c.Move, tag=tags, uid=st.booleans(), sequence_set=seq_or_saved, mailbox=mailboxes),
    st.builds(
        c.Sort,
        tag=tags,
        uid=st.booleans(),
        criteria=st.lists(
            st.builds(c.SortCriterion, key=st.sampled_from(c.SORT_KEYS), reverse=st.booleans()),
            min_size=1,
            max_size=3,
        ).map(tuple),
        charset=atoms,
        search=criteria,
    ),
    st.builds(
        c.Thread, tag=tags, uid=st.booleans(), algorithm=upper_atoms, charset=atoms, search=criteria
    ),
    st.builds(
        c.Id,
        tag=tags,
        parameters=st.one_of(
            st.none(),
            st.lists(
                st.tuples(
                    wire_strings.filter(lambda b: len(b) <= 30), st.one_of(st.none(), wire_strings)
                ),
                max_size=4,
            ).map(tuple),
        ),
    ),
    st.builds(c.GetQuota, tag=tags, root=wire_strings),
    st.builds(c.GetQuotaRoot, tag=tags, mailbox=mailboxes),
    st.builds(
        c.SetQuota,
        tag=tags,
        root=wire_strings,
        limits=st.lists(st.tuples(upper_atoms, st.integers(0, 2**63 - 1)), max_size=3).map(tuple),
    ),
)


@settings(max_examples=1500)
@given(commands, st.booleans(), st.booleans())
def test_round_trip(cmd: c.Command, literal_plus: bool, utf8: bool) -> None:
    fragments = format_command(cmd, literal_plus=literal_plus, utf8=utf8)
    assert parse_command(dump(fragments), utf8=utf8) == cmd
    # Fragments split at literals: each line fragment but the last announces a literal.
    for before, after in itertools.pairwise(fragments):
        if isinstance(after, LiteralFragment):
            assert isinstance(before, bytes)
            assert before.endswith(b"}\r\n")
            if after.mode == "sync":
                assert not literal_plus
    assert isinstance(fragments[-1], bytes)
    assert fragments[-1].endswith(b"\r\n")


def _parse_or_error(data: bytes, *, utf8: bool = False) -> c.Command | CommandParseError:
    # Anything but a Command or a CommandParseError escapes and fails the test.
    try:
        return parse_command(data, utf8=utf8)
    except CommandParseError as exc:
        return exc


@settings(max_examples=1000)
@given(st.binary(max_size=80), st.booleans())
def test_fuzz_arbitrary_bytes(data: bytes, utf8: bool) -> None:
    result = _parse_or_error(data, utf8=utf8)
    if isinstance(result, CommandParseError):
        assert isinstance(result, ParseError)
        assert result.tag is None or data.startswith(result.tag.encode())
    else:
        assert isinstance(result, c.Command)


command_words = st.sampled_from(
    [
        b"CAPABILITY",
        b"NOOP",
        b"LOGIN",
        b"AUTHENTICATE",
        b"ENABLE",
        b"SELECT",
        b"EXAMINE",
        b"CREATE",
        b"DELETE",
        b"RENAME",
        b"SUBSCRIBE",
        b"LIST",
        b"LSUB",
        b"STATUS",
        b"APPEND",
        b"EXPUNGE",
        b"SEARCH",
        b"FETCH",
        b"STORE",
        b"COPY",
        b"MOVE",
        b"SORT",
        b"THREAD",
        b"ID",
        b"GETQUOTA",
        b"SETQUOTA",
        b"UID FETCH",
        b"UID SEARCH",
        b"UID EXPUNGE",
    ]
)
fuzz_tokens = st.sampled_from(
    [
        b" ",
        b"(",
        b")",
        b"[",
        b"]",
        b"<",
        b">",
        b".",
        b"1",
        b"*",
        b":",
        b",",
        b"$",
        b'"',
        b"\\",
        b"{3}\r\n",
        b"~{2}\r\n",
        b"NIL",
        b"INBOX",
        b"FLAGS",
        b"BODY",
        b"PEEK",
        b"HEADER",
        b"TEXT",
        b"MIME",
        b"NOT",
        b"OR",
        b"UID",
        b"ALL",
        b"SEEN",
        b"RETURN",
        b"CHARSET",
        b"MODSEQ",
        b"CHANGEDSINCE",
        b"VANISHED",
        b"QRESYNC",
        b"CONDSTORE",
        b"1-Feb-1994",
        b"=",
        b"+",
        b"-",
        b"USE",
        b"STATUS",
        b"\xff",
        b"&",
        b"\x00",
    ]
)


@settings(max_examples=2000)
@given(command_words, st.lists(fuzz_tokens, max_size=20))
def test_fuzz_structured(word: bytes, tokens: list[bytes]) -> None:
    data = b"t1 " + word + b" " + b"".join(tokens)
    result = _parse_or_error(data)
    assert result.tag == "t1"
    if isinstance(result, c.Command):
        assert parse_command(dump(format_command(result))) == result
