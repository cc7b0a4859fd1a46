"""RFC 9051's own example lines parse, and write back identically.

The lines are the "C:" and "S:" lines of RFC 9051 sections 6, 7 and 8, copied from the
RFC into tests/vectors/imap-rfc9051-examples.txt (its header says how they were read).
Every client line goes through ``parse_command`` and every server line through
``parse_response``, except the lines of `INVALID` (which RFC 9051's own ABNF does not
allow, and which we reject). The value written back by ``format_command`` /
``format_response`` is the RFC's own bytes, because a parsed value keeps its spelling.
Written with ``as_parsed=False`` it takes the canonical spelling: the RFC's bytes again,
except for the lines of `DIFFERENT` (where the canonical spelling differs, for the reason
given); either way it parses back to an equal value.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from mailproto import LocalProtocolError
from mailproto.imap import (
    ParseError,
    dump,
    format_command,
    format_idle_done,
    format_response,
    parse_command,
    parse_idle_done,
    parse_response,
)
from mailproto.imap import responses as r
from mailproto.imap._responses import List

EXAMPLES = Path(__file__).parent.parent.parent / "vectors" / "imap-rfc9051-examples.txt"


class Example(NamedTuple):
    line: int  # where the message starts in the vector file
    who: str  # "C" (client) or "S" (server)
    wire: bytes  # the message, CRLF-ended, literals inline


def _load() -> list[Example]:
    examples: list[Example] = []
    for number, text in enumerate(EXAMPLES.read_bytes().split(b"\n"), 1):
        if not text or text.startswith(b"#"):
            continue
        kind, _, rest = text.partition(b" ")
        if kind in (b"C+", b"S+"):
            last = examples[-1]
            assert kind[:1].decode() == last.who, f"line {number}"
            examples[-1] = last._replace(wire=last.wire + rest + b"\r\n")
            continue
        assert kind in (b"C:", b"S:"), f"line {number}: {text!r}"
        examples.append(Example(number, kind[:1].decode(), rest + b"\r\n"))
    return examples


EXAMPLE_LIST = _load()

# --- why the canonical spelling differs from the RFC's -----------------------------------
# A value built in code, or written with as_parsed=False, is spelled canonically
# (docs/imap.md): one spelling per value, which parses to the same value (checked below
# for every line).
LOWER_NAME = "command names and keywords in lower case: we write them in upper case"
INBOX = "INBOX is case-insensitive: we write any spelling of it as INBOX"
QUOTED_AS_ATOM = "a quoted string that can be an atom: we write the atom"
ONE_PATTERN = "a LIST pattern list of one pattern: we write the bare pattern"
EXT_TAG_QUOTED = "a LIST extended-data tag sent as an atom: we write tags quoted"
SEARCH_STRING_QUOTED = "a SEARCH string sent as an atom: we write SEARCH strings quoted"
LITERAL_PLUS = "a non-synchronizing literal {n+}: we write {n} (LITERAL+ is off by default)"
LITERAL_QUOTED = "a literal whose octets fit a quoted string: we write the quoted string"
STORE_PARENS = "STORE flags without parentheses: we write a parenthesized flag list"
BADCHARSET_PARENS = "BADCHARSET charsets without parentheses: we write them parenthesized"

# (the RFC's line, our line, why they differ); lines without their final CRLF.
DIFFERENT: list[tuple[bytes, bytes, tuple[str, ...]]] = [
    (
        b'* LIST () "/" "Normalized" ("OLDNAME" ("NonNormalized"))',
        b'* LIST () "/" Normalized ("OLDNAME" (NonNormalized))',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed \\NonExistent) "/" "Fruit/Peach"',
        b'* LIST (\\Subscribed \\NonExistent) "/" Fruit/Peach',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\NonExistent) "." "INBOX.DeletedMailbox"',
        b'* LIST (\\NonExistent) "." INBOX.DeletedMailbox',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "NewMailbox" ("OLDNAME" ("OldMailbox"))',
        b'* LIST () "/" NewMailbox ("OLDNAME" (OldMailbox))',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'A01 LIST "" "*"',
        b'A01 LIST "" *',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Marked \\NoInferiors) "/" "inbox"',
        b'* LIST (\\Marked \\NoInferiors) "/" INBOX',
        (INBOX, QUOTED_AS_ATOM),
    ),
    (
        b'* LIST () "/" "Fruit"',
        b'* LIST () "/" Fruit',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "Fruit/Apple"',
        b'* LIST () "/" Fruit/Apple',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "Fruit/Banana"',
        b'* LIST () "/" Fruit/Banana',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "Tofu"',
        b'* LIST () "/" Tofu',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "Vegetable"',
        b'* LIST () "/" Vegetable',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "Vegetable/Broccoli"',
        b'* LIST () "/" Vegetable/Broccoli',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "Vegetable/Corn"',
        b'* LIST () "/" Vegetable/Corn',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'A02 LIST (SUBSCRIBED) "" "*"',
        b'A02 LIST (SUBSCRIBED) "" *',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Marked \\NoInferiors \\Subscribed) "/" "inbox"',
        b'* LIST (\\Marked \\NoInferiors \\Subscribed) "/" INBOX',
        (INBOX, QUOTED_AS_ATOM),
    ),
    (
        b'* LIST (\\Subscribed) "/" "Fruit/Banana"',
        b'* LIST (\\Subscribed) "/" Fruit/Banana',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "Vegetable"',
        b'* LIST (\\Subscribed) "/" Vegetable',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "Vegetable/Broccoli"',
        b'* LIST (\\Subscribed) "/" Vegetable/Broccoli',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'A03 LIST () "" "%" RETURN (CHILDREN)',
        b'A03 LIST () "" % RETURN (CHILDREN)',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\HasChildren) "/" "Fruit"',
        b'* LIST (\\HasChildren) "/" Fruit',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\HasNoChildren) "/" "Tofu"',
        b'* LIST (\\HasNoChildren) "/" Tofu',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\HasChildren) "/" "Vegetable"',
        b'* LIST (\\HasChildren) "/" Vegetable',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'A04 LIST (REMOTE) "" "%" RETURN (CHILDREN)',
        b'A04 LIST (REMOTE) "" % RETURN (CHILDREN)',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Remote \\HasNoChildren) "/" "Bread"',
        b'* LIST (\\Remote \\HasNoChildren) "/" Bread',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\HasChildren \\Remote) "/" "Meat"',
        b'* LIST (\\HasChildren \\Remote) "/" Meat',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'A05 LIST (REMOTE SUBSCRIBED) "" "*"',
        b'A05 LIST (REMOTE SUBSCRIBED) "" *',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Remote \\Subscribed) "/" "Bread"',
        b'* LIST (\\Remote \\Subscribed) "/" Bread',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'A06 LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)',
        b'A06 LIST (REMOTE) "" * RETURN (SUBSCRIBED)',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Remote) "/" "Meat"',
        b'* LIST (\\Remote) "/" Meat',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'C01 LIST "" "*"',
        b'C01 LIST "" *',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "Foo"',
        b'* LIST () "/" Foo',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "Foo/Bar"',
        b'* LIST () "/" Foo/Bar',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "Foo/Baz"',
        b'* LIST () "/" Foo/Baz',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "Moo"',
        b'* LIST () "/" Moo',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'CA3 LIST "" "%" RETURN (CHILDREN)',
        b'CA3 LIST "" % RETURN (CHILDREN)',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\HasChildren) "/" "Foo"',
        b'* LIST (\\HasChildren) "/" Foo',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\HasNoChildren) "/" "Moo"',
        b'* LIST (\\HasNoChildren) "/" Moo',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'C02 LIST (SUBSCRIBED) "" "*"',
        b'C02 LIST (SUBSCRIBED) "" *',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "Foo/Baz"',
        b'* LIST (\\Subscribed) "/" Foo/Baz',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"',
        b'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" %',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST () "/" Foo ("CHILDINFO" ("SUBSCRIBED"))',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST (\\Subscribed) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed \\HasChildren) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST (\\Subscribed \\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\NonExistent) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST (\\NonExistent) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)',
        b'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (CHILDREN)',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\HasChildren \\Subscribed) "/" "Foo"',
        b'* LIST (\\HasChildren \\Subscribed) "/" Foo',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Moo"',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" Moo',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'D01 LIST "" "*"',
        b'D01 LIST "" *',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "foo2"',
        b'* LIST () "/" foo2',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "foo2/bar1"',
        b'* LIST () "/" foo2/bar1',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "foo2/bar2"',
        b'* LIST () "/" foo2/bar2',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "baz2"',
        b'* LIST () "/" baz2',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "baz2/bar2"',
        b'* LIST () "/" baz2/bar2',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "baz2/bar22"',
        b'* LIST () "/" baz2/bar22',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "baz2/bar222"',
        b'* LIST () "/" baz2/bar222',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "eps2"',
        b'* LIST () "/" eps2',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "eps2/mamba"',
        b'* LIST () "/" eps2/mamba',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "qux2/bar2"',
        b'* LIST () "/" qux2/bar2',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'D02 LIST (SUBSCRIBED) "" "*"',
        b'D02 LIST (SUBSCRIBED) "" *',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "foo2/bar1"',
        b'* LIST (\\Subscribed) "/" foo2/bar1',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "foo2/bar2"',
        b'* LIST (\\Subscribed) "/" foo2/bar2',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "baz2/bar2"',
        b'* LIST (\\Subscribed) "/" baz2/bar2',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "baz2/bar22"',
        b'* LIST (\\Subscribed) "/" baz2/bar22',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "baz2/bar222"',
        b'* LIST (\\Subscribed) "/" baz2/bar222',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "eps2"',
        b'* LIST (\\Subscribed) "/" eps2',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "eps2/mamba"',
        b'* LIST (\\Subscribed) "/" eps2/mamba',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "qux2/bar2"',
        b'* LIST (\\Subscribed) "/" qux2/bar2',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'D03 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"',
        b'D03 LIST (RECURSIVEMATCH SUBSCRIBED) "" *2',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "foo2" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST () "/" foo2 ("CHILDINFO" ("SUBSCRIBED"))',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\Subscribed) "/" "eps2" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST (\\Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "baz2" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST () "/" baz2 ("CHILDINFO" ("SUBSCRIBED"))',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\NonExistent) "/" "qux2" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST (\\NonExistent) "/" qux2 ("CHILDINFO" ("SUBSCRIBED"))',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'D03 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*"',
        b'D03 LIST (RECURSIVEMATCH SUBSCRIBED) "" *',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'a1 LIST "" ("foo")',
        b'a1 LIST "" foo',
        (ONE_PATTERN, QUOTED_AS_ATOM),
    ),
    (
        b'a2 LIST (SUBSCRIBED) "" "foo/*"',
        b'a2 LIST (SUBSCRIBED) "" foo/*',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "." "INBOX"',
        b'* LIST () "." INBOX',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* STATUS "INBOX" (MESSAGES 17 UNSEEN 16)',
        b"* STATUS INBOX (MESSAGES 17 UNSEEN 16)",
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "." "foo"',
        b'* LIST () "." foo',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* STATUS "foo" (MESSAGES 30 UNSEEN 29)',
        b"* STATUS foo (MESSAGES 30 UNSEEN 29)",
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\NoSelect) "." "bar"',
        b'* LIST (\\NoSelect) "." bar',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* STATUS "INBOX" (MESSAGES 17)',
        b"* STATUS INBOX (MESSAGES 17)",
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "." "foo" (CHILDINFO ("SUBSCRIBED"))',
        b'* LIST () "." foo ("CHILDINFO" ("SUBSCRIBED"))',
        (EXT_TAG_QUOTED, QUOTED_AS_ATOM),
    ),
    (
        b'A002 LIST (SPECIAL-USE) "" "*"',
        b'A002 LIST (SPECIAL-USE) "" *',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'A003 LIST (SPECIAL-USE) "#mh/" "*"',
        b"A003 LIST (SPECIAL-USE) #mh/ *",
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\NonExistent \\Archive) "/" "#mh/Archives"',
        b'* LIST (\\NonExistent \\Archive) "/" #mh/Archives',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\NonExistent \\Drafts) "/" "#mh/Drafts"',
        b'* LIST (\\NonExistent \\Drafts) "/" #mh/Drafts',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST (\\NonExistent \\Junk) "/" "#mh/Junk"',
        b'* LIST (\\NonExistent \\Junk) "/" #mh/Junk',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'A002 LIST "" "#Users/%"',
        b'A002 LIST "" #Users/%',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'A003 LIST "" "#Users/Mike/%"',
        b'A003 LIST "" #Users/Mike/%',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "#Users/Mike/INBOX"',
        b'* LIST () "/" #Users/Mike/INBOX',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "#Users/Mike/Foo"',
        b'* LIST () "/" #Users/Mike/Foo',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'A002 LIST "" "~mark/%"',
        b'A002 LIST "" ~mark/%',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "~mark/INBOX"',
        b'* LIST () "/" ~mark/INBOX',
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () "/" "~mark/foo"',
        b'* LIST () "/" ~mark/foo',
        (QUOTED_AS_ATOM,),
    ),
    (
        (
            b"A003 APPEND saved-messages (\\Seen) {297+}\r\n"
            b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
            b"From: Fred Foobar <foobar@example.com>\r\n"
            b"Subject: afternoon meeting\r\n"
            b"To: mooch@example.com\r\n"
            b"Message-Id: <B27397-0100000@example.com>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
            b"\r\n"
            b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
        ),
        (
            b"A003 APPEND saved-messages (\\Seen) {297}\r\n"
            b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
            b"From: Fred Foobar <foobar@example.com>\r\n"
            b"Subject: afternoon meeting\r\n"
            b"To: mooch@example.com\r\n"
            b"Message-Id: <B27397-0100000@example.com>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
            b"\r\n"
            b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
        ),
        (LITERAL_PLUS,),
    ),
    (
        (
            b"P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8+}\r\n"
            b"\xd0\xbc\xd0\xb0\xd1\x82\xd1\x8c"
        ),
        (
            b"P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8}\r\n"
            b"\xd0\xbc\xd0\xb0\xd1\x82\xd1\x8c"
        ),
        (LITERAL_PLUS,),
    ),
    (
        b"B283 SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1,3000:3021) TEXT {4}\r\nXXXX",
        b'B283 SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1,3000:3021) TEXT "XXXX"',
        (LITERAL_QUOTED,),
    ),
    (
        b"B283 NO [BADCHARSET UTF-8] KOI8-R is not supported",
        b"B283 NO [BADCHARSET (UTF-8)] KOI8-R is not supported",
        (BADCHARSET_PARENS,),
    ),
    (
        b'F283 COPY $ "Junk"',
        b"F283 COPY $ Junk",
        (QUOTED_AS_ATOM,),
    ),
    (
        b"F284 STORE $ +FLAGS.Silent (\\Deleted)",
        b"F284 STORE $ +FLAGS.SILENT (\\Deleted)",
        (LOWER_NAME,),
    ),
    (
        b'b LOGIN "fred" "foo"',
        b"b LOGIN fred foo",
        (QUOTED_AS_ATOM,),
    ),
    (
        b'l create "///////"',
        b"l CREATE ///////",
        (LOWER_NAME, QUOTED_AS_ATOM),
    ),
    (
        b'k1 select "/archive/projects/experiment-iv"',
        b"k1 SELECT /archive/projects/experiment-iv",
        (LOWER_NAME, QUOTED_AS_ATOM),
    ),
    (
        b'k2 status "/archive/projects/experiment-iv" (messages)',
        b"k2 STATUS /archive/projects/experiment-iv (MESSAGES)",
        (LOWER_NAME, QUOTED_AS_ATOM),
    ),
    (
        b'e login "fred" "foo"',
        b"e LOGIN fred foo",
        (LOWER_NAME, QUOTED_AS_ATOM),
    ),
    (
        b'i select "/archive/projects/experiment-iv"',
        b"i SELECT /archive/projects/experiment-iv",
        (LOWER_NAME, QUOTED_AS_ATOM),
    ),
    (
        b'd login "fred" "foo"',
        b"d LOGIN fred foo",
        (LOWER_NAME, QUOTED_AS_ATOM),
    ),
    (
        b"h search from maria@example.com",
        b'h SEARCH FROM "maria@example.com"',
        (LOWER_NAME, SEARCH_STRING_QUOTED),
    ),
    (
        b'g delete "/archive/projects/experiment-iv"',
        b"g DELETE /archive/projects/experiment-iv",
        (LOWER_NAME, QUOTED_AS_ATOM),
    ),
    (
        b'f select "/archive/projects/experiment-iv"',
        b"f SELECT /archive/projects/experiment-iv",
        (LOWER_NAME, QUOTED_AS_ATOM),
    ),
    (
        b"n1 uid copy 1:* oldmail",
        b"n1 UID COPY 1:* oldmail",
        (LOWER_NAME,),
    ),
    (
        b"n2 uid copy 1:* oldmail",
        b"n2 UID COPY 1:* oldmail",
        (LOWER_NAME,),
    ),
    (
        b"d select inbox",
        b"d SELECT INBOX",
        (LOWER_NAME, INBOX),
    ),
    (
        b'j select "/archive/projects/experiment-iv"',
        b"j SELECT /archive/projects/experiment-iv",
        (LOWER_NAME, QUOTED_AS_ATOM),
    ),
    (
        b'a LOGIN "fred" "foo"',
        b"a LOGIN fred foo",
        (QUOTED_AS_ATOM,),
    ),
    (
        b'* LIST () ":" Tables:new (tablecloth ("edge" "lacy") Sample ("text" "more text"))',
        b'* LIST () ":" Tables:new ("tablecloth" (edge lacy) "Sample" (text "more text"))',
        (EXT_TAG_QUOTED, QUOTED_AS_ATOM),
    ),
    (
        b"A001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man",
        b'A001 LOGIN "FRED FOOBAR" "fat man"',
        (LITERAL_QUOTED,),
    ),
    (
        b"a000 starttls",
        b"a000 STARTTLS",
        (LOWER_NAME,),
    ),
    (
        b"a002 select inbox",
        b"a002 SELECT INBOX",
        (LOWER_NAME, INBOX),
    ),
    (
        b'* LIST () "/" INBOX ("OLDNAME" ("inbox"))',
        b'* LIST () "/" INBOX ("OLDNAME" (INBOX))',
        (INBOX, QUOTED_AS_ATOM),
    ),
    (
        b"a003 fetch 12 full",
        b"a003 FETCH 12 FULL",
        (LOWER_NAME,),
    ),
    (
        b"a004 fetch 12 body[header]",
        b"a004 FETCH 12 BODY[HEADER]",
        (LOWER_NAME,),
    ),
    (
        b"a005 store 12 +flags \\deleted",
        b"a005 STORE 12 +FLAGS (\\deleted)",
        (LOWER_NAME, STORE_PARENS),
    ),
    (
        b"a006 logout",
        b"a006 LOGOUT",
        (LOWER_NAME,),
    ),
]
CANONICAL = {rfc: (ours, why) for rfc, ours, why in DIFFERENT}

# --- lines RFC 9051's own ABNF does not allow (we reject them) ------------------------
# Four lines are outside the ABNF but parse: "* OK [UIDVALIDITY 1]",
# "* OK [UIDNEXT 1]", "* OK [COPYUID 432432 42:69 1202:1229]" and "e NO [CONTACTADMIN]"
# have no SP and no text after "]" (resp-text = ["[" resp-text-code "]" SP] [text]); we
# read a missing text as empty and write the line back unchanged.
INVALID: dict[bytes, str] = {
    b"* OK [UIDVALIDITY 9877410381] UIDs valid": (
        "6.3.2: UIDVALIDITY takes an nz-number, a 32-bit number; 9877410381 is larger"
    ),
    b'* LIST (\\Subscribed) "."  "INBOX"': "6.3.9.8: two SP before the mailbox (SP is one space)",
    b'* NAMESPACE (("INBOX." ".")) NIL  NIL': "6.3.10: two SP before the last NIL",
    b"A442 XPIG-LATIN": "6.5: a fictitious extension command; the ABNF has no x-command",
    b"* XPIG-LATIN ow-nay eaking-spay ig-pay atin-lay": (
        "6.5: the fictitious extension's response; not a response-data of the ABNF"
    ),
    (
        b'* LIST (\\Marked) ":" Tables (tablecloth (("edge" "lacy") ("color" "red")) Sample "text")'
    ): (
        '7.3.1: "Sample" is followed by a bare string; tagged-ext-val = tagged-ext-simple '
        '/ "(" [tagged-ext-comp] ")"'
    ),
    b"A044 BLURDYBLOOP {102856}": "7.6: not a command; the example shows the server's BAD",
}


def _parse(example: Example) -> object:
    if example.who == "C":
        return parse_command(example.wire)
    return parse_response(example.wire)


def _write(example: Example, value: object, *, as_parsed: bool = True) -> bytes:
    if example.who == "C":
        # {n+} is written only where LITERAL+ is in use, as it was for these lines
        literal_plus = as_parsed and b"+}\r\n" in example.wire
        return dump(format_command(value, literal_plus=literal_plus, as_parsed=as_parsed))  # type: ignore[arg-type]
    return dump(format_response(value, as_parsed=as_parsed))  # type: ignore[arg-type]


def test_the_examples_were_found() -> None:
    assert len(EXAMPLE_LIST) > 650
    assert {e.who for e in EXAMPLE_LIST} == {"C", "S"}


def test_every_table_line_is_an_rfc_line() -> None:
    wires = {e.wire[:-2] for e in EXAMPLE_LIST}
    assert set(CANONICAL) <= wires
    assert set(INVALID) <= wires
    assert not set(CANONICAL) & set(INVALID)
    assert len(CANONICAL) == len(DIFFERENT)  # no line listed twice


def test_the_counts() -> None:
    """The numbers: 679 messages, 7 rejected, 124 with a canonical spelling of their own."""
    assert len(EXAMPLE_LIST) == 679
    rejected = [e for e in EXAMPLE_LIST if e.wire[:-2] in INVALID]
    assert len(rejected) == len(INVALID) == 7
    different = [e for e in EXAMPLE_LIST if e.wire[:-2] in CANONICAL]
    assert len(CANONICAL) == 124
    assert len(different) == 163  # some lines occur more than once


@pytest.mark.parametrize("example", EXAMPLE_LIST, ids=[f"line{e.line}" for e in EXAMPLE_LIST])
def test_rfc9051_example(example: Example) -> None:
    line = example.wire[:-2]
    if line == b"DONE":
        parse_idle_done(example.wire)
        assert dump(format_idle_done()) == example.wire
        return
    if line in INVALID:
        with pytest.raises(ParseError):
            _parse(example)
        return
    value = _parse(example)
    assert _write(example, value) == example.wire
    canonical = _write(example, value, as_parsed=False)
    assert _parse(example._replace(wire=canonical)) == value
    if line in CANONICAL:
        ours, _why = CANONICAL[line]
        assert canonical == ours + b"\r\n"
        assert canonical != example.wire
    else:
        assert canonical == example.wire


# --- regressions: RFC 9051 lines that did not parse ----------------------------------


def test_badcharset_without_parentheses() -> None:
    # 6.4.4.4: the generic atom [SP text] form of resp-text-code.
    resp = parse_response(b"B283 NO [BADCHARSET UTF-8] KOI8-R is not supported\r\n")
    assert resp == r.Tagged(
        tag="B283",
        status="NO",
        code=r.BadCharset(charsets=(b"UTF-8",)),
        text="KOI8-R is not supported",
    )
    two = parse_response(b'a NO [BADCHARSET UTF-8 "US-ASCII"] no\r\n')
    assert two == parse_response(b"a NO [BADCHARSET (UTF-8 US-ASCII)] no\r\n")


def test_list_extended_data_of_unknown_tags() -> None:
    # 7.3.1: any mbox-list-extended-item, kept in order next to CHILDINFO and OLDNAME.
    wire = b'* LIST () ":" Tables:new (tablecloth ("edge" "lacy") Sample ("text" "more text"))'
    resp = parse_response(wire + b"\r\n")
    assert resp == List(
        attributes=(),
        delimiter=":",
        mailbox="Tables:new",
        extended=((b"tablecloth", (b"edge", b"lacy")), (b"Sample", (b"text", b"more text"))),
    )
    nested = b'* LIST () "/" foo (vendor.x-y 1:3,5 "OLDNAME" (bar) X ((a (b)) c) Y ())\r\n'
    value = parse_response(nested)
    assert isinstance(value, List)
    assert value.oldname == "bar"
    assert value.extended == (
        (b"vendor.x-y", b"1:3,5"),
        (b"X", ((b"a", (b"b",)), b"c")),
        (b"Y", ()),
    )
    assert parse_response(dump(format_response(value))) == value
    with pytest.raises(ParseError):  # a repeated OLDNAME is still an error
        parse_response(b'* LIST () "/" foo (OLDNAME (a) OLDNAME (b))\r\n')


@pytest.mark.parametrize(
    "extended",
    [
        ((b"CHILDINFO", (b"SUBSCRIBED",)),),  # has its own field
        ((b"oldname", (b"x",)),),
        ((b"X", b"not a number"),),  # a bare value is a sequence set or a number
        ((b"X", ((),)),),  # an inner list is not empty
        ((b"", b"1"),),
        ((b"X",),),
    ],
)
def test_list_extended_data_is_checked(extended: object) -> None:
    with pytest.raises(LocalProtocolError):
        List(attributes=(), delimiter="/", mailbox="a", extended=extended)  # type: ignore[arg-type]
