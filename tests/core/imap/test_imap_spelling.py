"""A parsed command or response writes back the way it was spelled.

IMAP lets a sender spell one value several ways (keywords in any case, a string as an
atom, a quoted string or a literal, INBOX in any case, dates with or without a leading
zero...). The parsed value keeps the spelling beside it (`Spelling`), out of equality,
so that formatting it gives back the very octets; a value built in code, or formatted
with ``as_parsed=False``, gets the canonical spelling.
"""

from __future__ import annotations

import attrs
import pytest

from mailproto.imap import (
    commands as c,
)
from mailproto.imap import (
    dump,
    format_command,
    format_response,
    parse_command,
    parse_response,
)
from mailproto.imap import (
    responses as r,
)

# (wire, canonical form of the same value)
COMMANDS = [
    (b'a login "fred" {3}\r\nfoo', b"a LOGIN fred foo"),
    (b'a1 select "inbox"', b"a1 SELECT INBOX"),
    (b"a1 Select InBox (condstore)", b"a1 SELECT INBOX (CONDSTORE)"),
    (b'a rename "inbox" Inbox', b"a RENAME INBOX INBOX"),
    (
        b'a uid fetch 1:* (flags body.peek[header.fields ("From" to)]<0.10>)',
        b"a UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From to)]<0.10>)",
    ),
    (b"a fetch 1 full (changedsince 5)", b"a FETCH 1 FULL (CHANGEDSINCE 5)"),
    (b"a fetch 2 binary.peek[1]<0.5>", b"a FETCH 2 BINARY.PEEK[1]<0.5>"),
    (
        b'a search charset "UTF-8" since "1-FEB-1994" from smith',
        b'a SEARCH CHARSET UTF-8 SINCE 1-Feb-1994 FROM "smith"',
    ),
    (b"a search on 01-feb-1994 not seen", b"a SEARCH ON 1-Feb-1994 NOT SEEN"),
    (b"a search return (min count) header subject {2}\r\nhi", None),
    (b"a store 1 -flags.silent \\Seen \\Deleted", b"a STORE 1 -FLAGS.SILENT (\\Seen \\Deleted)"),
    (b"a store 1 (unchangedsince 9) flags ()", b"a STORE 1 (UNCHANGEDSINCE 9) FLAGS ()"),
    (b'a list "" ("*")', b'a LIST "" *'),
    (
        b'a list (subscribed) "" "%" return (children)',
        b'a LIST (SUBSCRIBED) "" % RETURN (CHILDREN)',
    ),
    (
        b'a append inbox (\\Seen) "01-jan-2024 10:20:30 +0000" {3}\r\nabc',
        b'a APPEND INBOX (\\Seen) " 1-Jan-2024 10:20:30 +0000" {3}\r\nabc',
    ),
    (b"a status inbox (messages uidnext)", b"a STATUS INBOX (MESSAGES UIDNEXT)"),
    (b'a sort (reverse date) "utf-8" all', b"a SORT (REVERSE DATE) utf-8 ALL"),
    (b"a thread references utf-8 all", b"a THREAD REFERENCES utf-8 ALL"),
    (b'a id ("name" {3}\r\nfoo)', b'a ID ("name" "foo")'),
    (b"a create x (use (\\Drafts))", b"a CREATE x (USE (\\Drafts))"),
    (b"a getquota {1}\r\nx", b"a GETQUOTA x"),
]

RESPONSES = [
    (
        b'* 1 FETCH (INTERNALDATE "01-JAN-2024 10:20:30 +0000")',
        b'* 1 FETCH (INTERNALDATE " 1-Jan-2024 10:20:30 +0000")',
    ),
    (b'a NO [BADCHARSET UTF-8 "US-ASCII"] no', b"a NO [BADCHARSET (UTF-8 US-ASCII)] no"),
    (b'* LIST () "/" "inbox" (OLDNAME ("Inbox"))', b'* LIST () "/" INBOX ("OLDNAME" (INBOX))'),
    (b'* LIST () "/" {3}\r\nabc', b'* LIST () "/" abc'),
    (b"* 2 FETCH (ENVELOPE (NIL {2}\r\nhi NIL NIL NIL NIL NIL NIL NIL NIL))", None),
    (b'* STATUS "blurdybloop" (MESSAGES 231)', b"* STATUS blurdybloop (MESSAGES 231)"),
]


@pytest.mark.parametrize(("wire", "canonical"), COMMANDS)
def test_command_written_as_spelled(wire: bytes, canonical: bytes | None) -> None:
    cmd = parse_command(wire + b"\r\n")
    assert dump(format_command(cmd)) == wire + b"\r\n"
    written = dump(format_command(cmd, as_parsed=False))
    if canonical is not None:
        assert written == canonical + b"\r\n"
    again = parse_command(written)
    assert again == cmd
    assert hash(again) == hash(cmd)
    assert again.spelling is None or written != wire + b"\r\n"


@pytest.mark.parametrize(("wire", "canonical"), RESPONSES)
def test_response_written_as_spelled(wire: bytes, canonical: bytes | None) -> None:
    resp = parse_response(wire + b"\r\n")
    assert dump(format_response(resp)) == wire + b"\r\n"
    written = dump(format_response(resp, as_parsed=False))
    if canonical is not None:
        assert written == canonical + b"\r\n"
    assert parse_response(written) == resp


def test_spelling_is_not_part_of_the_value() -> None:
    lower = parse_command(b'a select "inbox"\r\n')
    upper = parse_command(b"a SELECT INBOX\r\n")
    assert lower == upper
    assert hash(lower) == hash(upper)
    assert lower.spelling is not None
    assert upper.spelling is None
    assert "spelling" not in repr(lower)


def test_literal_plus_is_kept_only_where_allowed() -> None:
    cmd = parse_command(b"a LOGIN {4+}\r\nfred {3+}\r\nfoo\r\n")
    # without LITERAL+ the client must wait for "+": {n}, never {n+}
    assert dump(format_command(cmd)) == b"a LOGIN {4}\r\nfred {3}\r\nfoo\r\n"
    plus = format_command(cmd, literal_plus=True)
    assert dump(plus) == b"a LOGIN {4+}\r\nfred {3+}\r\nfoo\r\n"
    # with LITERAL+ a literal that was sent synchronizing stays so
    sync = parse_command(b"a LOGIN {4}\r\nfred x\r\n")
    assert dump(format_command(sync, literal_plus=True)) == b"a LOGIN {4}\r\nfred x\r\n"


def test_an_edited_value_is_written_correctly() -> None:
    cmd = parse_command(b"a store 1 +flags \\Seen\r\n")
    assert isinstance(cmd, c.Store)
    edited = attrs.evolve(cmd, flags=("\\Deleted", "\\Seen"))
    assert dump(format_command(edited)) == b"a STORE 1 +FLAGS (\\Deleted \\Seen)\r\n"
    login = parse_command(b'a login "fred" "foo"\r\n')
    assert isinstance(login, c.Login)
    # a spelling applies only to the octets it was noted for
    other = attrs.evolve(login, password=b"two words")
    assert dump(format_command(other)) == b'a LOGIN fred "two words"\r\n'


def test_spellings_that_no_longer_fit_are_ignored() -> None:
    # A spelling noted for a value is only used while it is legal for it: "quoted"
    # needs quotable octets, "atom" an atom.
    cmd = parse_command(b"a search subject hello\r\n")
    assert cmd.spelling is not None
    assert dump(format_command(cmd, utf8=True)) == b"a search subject hello\r\n"
    resp = parse_response(b'* LIST () "/" "Fruit"\r\n')
    assert isinstance(resp, r.List)
    renamed = attrs.evolve(resp, mailbox="Fruit/Apple")
    assert dump(format_response(renamed)) == b'* LIST () "/" Fruit/Apple\r\n'
