"""Command values and the command codec: known answers, syntax errors, validation."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from mailproto._util import LocalProtocolError
from mailproto.imap import _commands as c
from mailproto.imap import _search as s
from mailproto.imap._command_codec import (
    CommandParseError,
    format_command,
    format_idle_done,
    parse_command,
    parse_idle_done,
)
from mailproto.imap._grammar import LiteralFragment, ParseError, SequenceSet, dump
from mailproto.imap._types import Section

UTC = datetime.UTC


def roundtrip(cmd: c.Command, **kw: bool) -> bytes:
    wire = dump(format_command(cmd, **kw))
    assert parse_command(wire, utf8=kw.get("utf8", False)) == cmd
    return wire


# --- known answers: value -> bytes -------------------------------------------------------

KNOWN: list[tuple[c.Command, bytes]] = [
    (c.Noop(tag="a"), b"a NOOP\r\n"),
    (c.Compress(tag="a", mechanism="DEFLATE"), b"a COMPRESS DEFLATE\r\n"),
    (c.Authenticate(tag="a", mechanism="plain"), b"a AUTHENTICATE PLAIN\r\n"),
    (
        c.Authenticate(tag="a", mechanism="PLAIN", initial_response=b""),
        b"a AUTHENTICATE PLAIN =\r\n",
    ),
    (c.Login(tag="a", username=b"fred", password=b"x y"), b'a LOGIN fred "x y"\r\n'),
    (c.Login(tag="a", username=b"NIL", password=b""), b'a LOGIN "NIL" ""\r\n'),
    (c.Select(tag="a", mailbox="inbox", condstore=True), b"a SELECT INBOX (CONDSTORE)\r\n"),
    (
        c.Examine(
            tag="a",
            mailbox="x",
            qresync=c.QResync(
                uidvalidity=1,
                modseq=2,
                seq_match=(SequenceSet.of(1, 2), SequenceSet.of(5, 6)),
            ),
        ),
        b"a EXAMINE x (QRESYNC (1 2 (1:2 5:6)))\r\n",
    ),
    (c.Create(tag="a", mailbox="Entw\u00fcrfe"), b"a CREATE Entw&APw-rfe\r\n"),
    (c.Create(tag="a", mailbox="x", special_use=()), b"a CREATE x (USE ())\r\n"),
    (c.Rename(tag="a", mailbox="a b", new_name="c"), b'a RENAME "a b" c\r\n'),
    (c.Lsub(tag="a", reference="", pattern="%"), b'a LSUB "" %\r\n'),
    (c.List(tag="a", reference="", patterns=("a b",)), b'a LIST "" "a b"\r\n'),
    (c.Status(tag="a", mailbox="x", items=("MAILBOXID",)), b"a STATUS x (MAILBOXID)\r\n"),
    (c.Expunge(tag="a", uid=True, sequence_set=s.SAVED), b"a UID EXPUNGE $\r\n"),
    (
        c.Fetch(tag="a", sequence_set=SequenceSet.of(1), items=c.FetchBody(peek=True)),
        b"a FETCH 1 BODY.PEEK[]\r\n",
    ),
    (
        c.Fetch(
            tag="a",
            sequence_set=SequenceSet.of(1),
            items=(c.FetchBody(section=Section((1,), "MIME"), partial=(0, 10)),),
        ),
        b"a FETCH 1 (BODY[1.MIME]<0.10>)\r\n",
    ),
    (
        c.Fetch(tag="a", sequence_set=SequenceSet.of(1), items=c.FetchBinarySize(part=(1, 2))),
        b"a FETCH 1 BINARY.SIZE[1.2]\r\n",
    ),
    (
        c.Store(
            tag="a",
            uid=True,
            sequence_set=SequenceSet.of(1),
            action="remove",
            flags=(),
            silent=True,
        ),
        b"a UID STORE 1 -FLAGS.SILENT ()\r\n",
    ),
    (
        c.Search(tag="a", criteria=(s.SearchText(name="FROM", value=b'a"b\\'),)),
        b'a SEARCH FROM "a\\"b\\\\"\r\n',
    ),
    (c.Id(tag="a", parameters=()), b"a ID ()\r\n"),
    (c.SetQuota(tag="a", root=b"", limits=()), b'a SETQUOTA "" ()\r\n'),
    (
        c.Thread(
            tag="a", algorithm="references", charset="UTF-8", search=(s.SearchFlag(name="ALL"),)
        ),
        b"a THREAD REFERENCES UTF-8 ALL\r\n",
    ),
    (
        c.Append(
            tag="a",
            mailbox="x",
            messages=(
                c.AppendMessage(
                    message=b"m",
                    internal_date=datetime.datetime(
                        2024,
                        1,
                        2,
                        3,
                        4,
                        5,
                        tzinfo=datetime.timezone(datetime.timedelta(hours=-5, minutes=-30)),
                    ),
                ),
            ),
        ),
        b'a APPEND x " 2-Jan-2024 03:04:05 -0530" {1}\r\nm\r\n',
    ),
]


@pytest.mark.parametrize(("cmd", "wire"), KNOWN)
def test_known_answer(cmd: c.Command, wire: bytes) -> None:
    assert roundtrip(cmd) == wire


def test_sync_literal_splits_fragments() -> None:
    cmd = c.Login(tag="a", username=b"caf\xc3\xa9", password=b"p\r\n")
    frags = format_command(cmd)
    assert frags == [
        b"a LOGIN {5}\r\n",
        LiteralFragment(b"caf\xc3\xa9", "sync"),
        b" {3}\r\n",
        LiteralFragment(b"p\r\n", "sync"),
        b"\r\n",
    ]
    assert parse_command(dump(frags)) == cmd


def test_literal_plus_and_utf8() -> None:
    cmd = c.Login(tag="a", username=b"caf\xc3\xa9", password=b"p")
    assert format_command(cmd, literal_plus=True) == [
        b"a LOGIN {5+}\r\n",
        LiteralFragment(b"caf\xc3\xa9", "nonsync"),
        b" p\r\n",
    ]
    assert format_command(cmd, utf8=True) == [b'a LOGIN "caf\xc3\xa9" p\r\n']


def test_binary_append() -> None:
    cmd = c.Append(
        tag="a", mailbox="x", messages=(c.AppendMessage(message=b"a\x00b", binary=True),)
    )
    frags = format_command(cmd)
    assert frags == [b"a APPEND x ~{3}\r\n", LiteralFragment(b"a\x00b", "binary"), b"\r\n"]
    assert parse_command(dump(frags)) == cmd


def test_mailbox_utf8_mode() -> None:
    cmd = c.Select(tag="a", mailbox="\u65e5\u672c")
    assert dump(format_command(cmd, utf8=True)) == 'a SELECT "日本"\r\n'.encode()
    assert dump(format_command(cmd)) == b"a SELECT &ZeVnLA-\r\n"
    assert parse_command('a SELECT "日本"\r\n'.encode(), utf8=True) == cmd
    assert parse_command(b"a SELECT &ZeVnLA-") == cmd


def test_parse_without_crlf_and_case() -> None:
    assert parse_command(b"X1 uid fetch 1:* (flags)") == c.Fetch(
        tag="X1",
        uid=True,
        sequence_set=SequenceSet(((1, None),)),
        items=(c.FetchAttr(name="FLAGS"),),
    )


def test_authenticate_decodes_base64() -> None:
    cmd = parse_command(b"a AUTHENTICATE PLAIN AHUAcA==")
    assert isinstance(cmd, c.Authenticate)
    assert cmd.initial_response == b"\x00u\x00p"


def test_idle_done() -> None:
    assert parse_idle_done(b"DONE\r\n") == c.IdleDone()
    assert parse_idle_done(b"done") == c.IdleDone()
    assert format_idle_done() == [b"DONE\r\n"]
    with pytest.raises(ParseError, match="expected DONE"):
        parse_idle_done(b"DONE2\r\n")


def test_login_repr_hides_password() -> None:
    assert "secret" not in repr(c.Login(tag="a", username=b"u", password=b"secret"))


# --- syntax errors: each carries the tag and says what is wrong ---------------------------

ERRORS: list[tuple[bytes, str]] = [
    (b"t1", "expected a space"),
    (b"t1 FOO", "unknown command 'FOO'"),
    (b"t1 UID NOOP", "unknown UID command 'NOOP'"),
    (b"t1 NOOP x", "expected end of line"),
    (b"t1 CAPABILITY ", "expected end of line"),
    (b"t1 LOGOUT extra", "expected end of line"),
    (b"t1 AUTHENTICATE", "expected a space"),
    (b"t1 AUTHENTICATE PLAIN !!!", "base64"),
    (b"t1 AUTHENTICATE PLAIN AAA", "base64"),
    (b"t1 LOGIN user", "expected a space"),
    (b"t1 LOGIN user (pw)", "expected an astring"),
    (b"t1 ENABLE", "expected a space"),
    (b"t1 COMPRESS", "expected a space"),
    (b"t1 COMPRESS (DEFLATE)", "expected an atom"),
    (b"t1 ENABLE (X)", "expected an atom"),
    (b"t1 SELECT", "expected a space"),
    (b"t1 SELECT INBOX (FOO)", "unexpected select parameter"),
    (b"t1 SELECT INBOX (CONDSTORE CONDSTORE)", "unexpected select parameter"),
    (b"t1 SELECT INBOX (QRESYNC (0 1))", "non-zero"),
    (b"t1 SELECT INBOX (QRESYNC (1 0))", "invalid SELECT"),
    (b"t1 EXAMINE INBOX (QRESYNC (1 5 1:5 (1:2)))", "expected a space"),
    (b"t1 SELECT &Jjo", "bad mailbox name"),
    (b"t1 CREATE x (USE (Drafts", "expected"),
    (b"t1 CREATE x (FOO ())", "expected USE"),
    (b"t1 CREATE x (USE (\\*))", "invalid CREATE"),
    (b"t1 DELETE", "expected a space"),
    (b"t1 RENAME a", "expected a space"),
    (b"t1 SUBSCRIBE (", "expected an astring"),
    (b"t1 UNSUBSCRIBE", "expected a space"),
    (b't1 LIST ""', "expected a space"),
    (b't1 LIST (FOO) "" *', "invalid LIST"),
    (b't1 LIST (RECURSIVEMATCH) "" *', "RECURSIVEMATCH"),
    (b't1 LIST "" * RETURN (FOO)', "unknown LIST return option"),
    (b't1 LIST "" * RETURN (CHILDREN CHILDREN)', "repeated"),
    (b't1 LIST "" * RETURN (STATUS (FOO))', "invalid LIST"),
    (b't1 LIST "" * RETURN (STATUS ())', "at least one"),
    (b't1 LIST "" * RETURNS ()', "expected a space"),
    (b't1 LIST "" a)', "expected end of line"),
    (b't1 LIST "" &Jjo', "bad mailbox pattern"),
    (b't1 LSUB ""', "expected a space"),
    (b"t1 STATUS x ()", "at least one"),
    (b"t1 STATUS x (MESSAGES MESSAGES)", "repeated"),
    (b"t1 STATUS x MESSAGES", "expected '('"),
    (b"t1 APPEND x", "at least one"),
    (b"t1 APPEND x (\\Seen)", "expected a space"),
    (b"t1 APPEND x (\\Recent) {1}\r\na", "Recent"),
    (b't1 APPEND x "1-Jan-2000" {1}\r\na', "date-time"),
    (b"t1 APPEND x {1}\r\n\x00", "NUL in a literal"),
    (b"t1 APPEND x {5}\r\nab", "runs past the end"),
    (b"t1 APPEND x hello", "expected a literal"),
    (b"t1 EXPUNGE 1", "expected end of line"),
    (b"t1 UID EXPUNGE", "expected a space"),
    (b"t1 SEARCH", "expected a space"),
    (b"t1 SEARCH FOO", "unknown search key"),
    (b"t1 SEARCH RETURN (FOO) ALL", "invalid SEARCH"),
    (b't1 SEARCH CHARSET "\xc3\xa9" ALL', "invalid SEARCH"),
    (b"t1 SEARCH ()", "at least one"),
    (b"t1 SEARCH 0", "out of range"),
    (b"t1 SEARCH BEFORE 31-Feb-2000", "not a valid date"),
    (b"t1 SEARCH LARGER x", "expected a number"),
    (b't1 SEARCH MODSEQ "/x" all 1', "/flags/"),
    (b't1 SEARCH MODSEQ "/flags/x" some 1', "priv, shared or all"),
    (b"t1 SEARCH EMAILID !", "expected an object id"),
    (b"t1 SEARCH " + b"NOT " * 70 + b"ALL", "nested too deeply"),
    (b"t1 SEARCH " + b"(" * 70 + b"ALL" + b")" * 70, "nested too deeply"),
    (b"t1 SEARCH \xff", "expected a search key"),
    (b"t1 FETCH 1", "expected a space"),
    (b"t1 FETCH 1 ()", "at least one list item"),
    (b"t1 FETCH 1 FOO", "unknown fetch item"),
    (b"t1 FETCH 1 !", "expected a fetch item"),
    (b"t1 FETCH 1 BODY.PEEK", "expected '['"),
    (b"t1 FETCH 1 BODY[]<5>", "needs a length"),
    (b"t1 FETCH 1 BODY[MIME]", "MIME"),
    (b"t1 FETCH 1 BINARY[1.x]", "expected a number"),
    (b"t1 FETCH 1 FLAGS (FOO)", "unexpected fetch modifier"),
    (b"t1 FETCH 1 FLAGS (VANISHED VANISHED)", "unexpected fetch modifier"),
    (b"t1 FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)", "VANISHED needs UID FETCH"),
    (b"t1 FETCH 1:x FLAGS", "expected a space"),
    (b"t1 STORE 1 +FLAGS", "expected a space"),
    (b"t1 STORE 1 FLAGZ (\\Seen)", "FLAGS"),
    (b"t1 STORE 1 (UNCHANGEDSINCE x) FLAGS ()", "expected a number"),
    (b"t1 STORE 1 FLAGS (\\*)", "not a flag"),
    (b"t1 COPY 1", "expected a space"),
    (b"t1 MOVE x y", "expected a sequence set"),
    (b"t1 SORT () UTF-8 ALL", "at least one list item"),
    (b"t1 SORT (FOO) UTF-8 ALL", "not a sort key"),
    (b"t1 SORT (DATE) UTF-8", "expected a space"),
    (b"t1 THREAD REFERENCES", "expected a space"),
    (b't1 ID ("a")', "expected a space"),
    (b't1 ID ("a" "b" x)', "expected a string"),
    (b"t1 ID x", "expected '('"),
    (b"t1 GETQUOTA", "expected a space"),
    (b"t1 GETQUOTAROOT", "expected a space"),
    (b"t1 SETQUOTA x (STORAGE)", "expected a space"),
    (b"t1 SETQUOTA x STORAGE", "expected '('"),
]


@pytest.mark.parametrize(("line", "message"), ERRORS)
def test_syntax_error(line: bytes, message: str) -> None:
    with pytest.raises(CommandParseError) as info:
        parse_command(line + b"\r\n")
    assert info.value.tag == "t1"
    assert message in str(info.value)
    assert 0 <= info.value.pos <= len(line)


@pytest.mark.parametrize("line", [b"", b" NOOP", b"+ NOOP", b"(a) NOOP", b"\xff NOOP"])
def test_syntax_error_without_tag(line: bytes) -> None:
    with pytest.raises(CommandParseError, match="expected a tag") as info:
        parse_command(line)
    assert info.value.tag is None


# --- validation: an application cannot build a command that does not serialize ------------

SEQ = SequenceSet.of(1)
INVALID: list[tuple[type[Any], dict[str, Any]]] = [
    (c.Noop, {"tag": "a+b"}),
    (c.Noop, {"tag": ""}),
    (c.Noop, {"tag": "\u00e9"}),
    (c.Authenticate, {"tag": "a", "mechanism": "a b"}),
    (c.Authenticate, {"tag": "a", "mechanism": 5}),
    (c.Authenticate, {"tag": "a", "mechanism": "X", "initial_response": "str"}),
    (c.Login, {"tag": "a", "username": b"\x00", "password": b""}),
    (c.Login, {"tag": "a", "username": "u", "password": b""}),
    (c.Enable, {"tag": "a", "capabilities": ()}),
    (c.Enable, {"tag": "a", "capabilities": ["X"]}),
    (c.Select, {"tag": "a", "mailbox": 5}),
    (c.Select, {"tag": "a", "mailbox": "a\nb"}),
    (c.Select, {"tag": "a", "mailbox": "a", "qresync": "x"}),
    (c.Create, {"tag": "a", "mailbox": "a", "special_use": ("a b",)}),
    (c.List, {"tag": "a", "reference": "", "patterns": ()}),
    (c.List, {"tag": "a", "reference": "", "patterns": ("\x00",)}),
    (c.List, {"tag": "a", "reference": "", "patterns": ("*",), "selection": ("FOO",)}),
    (c.List, {"tag": "a", "reference": "", "patterns": ("*",), "return_options": ("FOO",)}),
    (c.ListReturnStatus, {"items": ()}),
    (c.Status, {"tag": "a", "mailbox": "a", "items": ("FOO",)}),
    (c.AppendMessage, {"message": "str"}),
    (c.AppendMessage, {"message": b"\x00"}),
    (c.AppendMessage, {"message": b"", "flags": ("\\Recent",)}),
    (c.AppendMessage, {"message": b"", "internal_date": datetime.datetime(2000, 1, 1)}),
    (c.AppendMessage, {"message": b"", "internal_date": "x"}),
    (
        c.AppendMessage,
        {"message": b"", "internal_date": datetime.datetime(2000, 1, 1, 0, 0, 0, 5, tzinfo=UTC)},
    ),
    (
        c.AppendMessage,
        {
            "message": b"",
            "internal_date": datetime.datetime(
                2000, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(seconds=30))
            ),
        },
    ),
    (c.Append, {"tag": "a", "mailbox": "a", "messages": ()}),
    (c.Append, {"tag": "a", "mailbox": "a", "messages": (b"x",)}),
    (c.Expunge, {"tag": "a", "uid": True}),
    (c.Expunge, {"tag": "a", "sequence_set": SEQ}),
    (c.Expunge, {"tag": "a", "uid": True, "sequence_set": "1"}),
    (c.Search, {"tag": "a", "criteria": ()}),
    (c.Search, {"tag": "a", "criteria": ("ALL",)}),
    (c.Search, {"tag": "a", "criteria": (s.SearchKey(),)}),
    (c.Search, {"tag": "a", "criteria": [s.SearchFlag(name="ALL")]}),
    (c.Search, {"tag": "a", "criteria": (s.SearchFlag(name="ALL"),), "charset": "a b"}),
    (c.Search, {"tag": "a", "criteria": (s.SearchFlag(name="ALL"),), "return_options": ("X",)}),
    (c.Fetch, {"tag": "a", "sequence_set": SEQ, "items": "NONE"}),
    (c.Fetch, {"tag": "a", "sequence_set": SEQ, "items": ()}),
    (c.Fetch, {"tag": "a", "sequence_set": SEQ, "items": ("FLAGS",)}),
    (c.Fetch, {"tag": "a", "sequence_set": SEQ, "items": 5}),
    (c.Fetch, {"tag": "a", "sequence_set": SEQ, "items": "ALL", "vanished": True}),
    (c.Fetch, {"tag": "a", "sequence_set": SEQ, "items": "ALL", "changedsince": -1}),
    (c.Fetch, {"tag": "a", "sequence_set": "1", "items": "ALL"}),
    (c.FetchAttr, {"name": "BODY[]"}),
    (c.FetchBody, {"section": "1"}),
    (c.FetchBody, {"partial": (0, 0)}),
    (c.FetchBody, {"partial": (0,)}),
    (c.FetchBinary, {"part": (0,)}),
    (c.FetchBinarySize, {"part": [1]}),
    (c.Store, {"tag": "a", "sequence_set": SEQ, "action": "toggle", "flags": ()}),
    (c.Store, {"tag": "a", "sequence_set": SEQ, "action": "set", "flags": ("a b",)}),
    (c.Store, {"tag": "a", "sequence_set": SEQ, "action": "set", "flags": (5,)}),
    (c.Copy, {"tag": "a", "sequence_set": SEQ, "mailbox": "\ud800"}),
    (c.SortCriterion, {"key": "NAME"}),
    (c.Sort, {"tag": "a", "criteria": (), "charset": "X", "search": (s.SearchFlag(name="ALL"),)}),
    (
        c.Sort,
        {"tag": "a", "criteria": ("DATE",), "charset": "X", "search": (s.SearchFlag(name="ALL"),)},
    ),
    (c.Thread, {"tag": "a", "algorithm": "X", "charset": "X", "search": ()}),
    (c.Id, {"tag": "a", "parameters": ((b"k",),)}),
    (c.Id, {"tag": "a", "parameters": ((b"k" * 31, None),)}),
    (c.Id, {"tag": "a", "parameters": ((b"k", b"\x00"),)}),
    (c.Id, {"tag": "a", "parameters": ((b"k", b"v" * 1025),)}),
    (c.Id, {"tag": "a", "parameters": tuple((b"k", None) for _ in range(31))}),
    (c.Id, {"tag": "a", "parameters": [(b"k", None)]}),
    (c.GetQuota, {"tag": "a", "root": "x"}),
    (c.SetQuota, {"tag": "a", "root": b"", "limits": (("STORAGE",),)}),
    (c.SetQuota, {"tag": "a", "root": b"", "limits": (("a b", 1),)}),
    (c.SetQuota, {"tag": "a", "root": b"", "limits": (("storage", 1),)}),
    (c.SetQuota, {"tag": "a", "root": b"", "limits": (("STORAGE", -1),)}),
    (c.QResync, {"uidvalidity": 0, "modseq": 1}),
    (c.QResync, {"uidvalidity": 1, "modseq": 0}),
    (c.QResync, {"uidvalidity": 1, "modseq": 1, "known_uids": "1"}),
    (c.QResync, {"uidvalidity": 1, "modseq": 1, "seq_match": (SEQ,)}),
]


@pytest.mark.parametrize(("cls", "kwargs"), INVALID)
def test_invalid_values_are_refused(cls: type[Any], kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        cls(**kwargs)


def test_mailbox_names_normalise_inbox() -> None:
    assert c.Select(tag="a", mailbox="iNbOx").mailbox == "INBOX"
    assert c.List(tag="a", reference="inbox", patterns=["inbox", "x"]).patterns == ("INBOX", "x")
    assert c.SetQuota(tag="a", root=b"", limits=(("STORAGE", 5),)).limits == (("STORAGE", 5),)


@pytest.mark.parametrize(
    ("cls", "kwargs"), [(c.Command, {}), (c._SelectBase, {"mailbox": "INBOX"})]
)
def test_abstract_bases_cannot_be_built(cls: type[Any], kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="abstract"):
        cls(tag="a", **kwargs)


def test_final_crlf_is_optional() -> None:
    cmd = parse_command(b"a APPEND x {2}\r\n\r\n\r\n")
    assert isinstance(cmd, c.Append)
    assert cmd.messages[0].message == b"\r\n"
    assert parse_command(b"a APPEND x {2}\r\nab") == parse_command(b"a APPEND x {2}\r\nab\r\n")
