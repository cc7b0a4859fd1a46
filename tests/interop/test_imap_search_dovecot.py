"""Differential test: our SEARCH, SORT and THREAD answers equal Dovecot's (issue 5).

A private Dovecot (`dovecot_helpers`) serves a Maildir holding a corpus: the messages of
``tests/vectors/messages/``, the CPython email test messages (as
test_imap_message_dovecot.py delivers them), the mailbox that reproduces the THREAD
examples of RFC 5256 (messages 166-209 there, written by `rfc5256_mailbox`), and a few
messages written here for charsets, transfer encodings and addresses. Flags are set
with STORE in a fixed pattern, then FLAGS, RFC822.SIZE and INTERNALDATE are fetched to
build our `MessageInfo` values, so both sides search the same mailbox.

Each query of `QUERIES` is one test case: the command goes to Dovecot as written, and
through `parse_command` to `search` / `search_messages` + `sort` / `thread`. The only
way to accept a difference is an entry in `KNOWN_DIFFERENCES` saying why our answer is
the right one (an RFC clause, or an RFC silence where ours finds what the user typed);
such a case is a strict xfail.
"""

from __future__ import annotations

import datetime
import imaplib
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dovecot_helpers import Dovecot, deliver, instance_processes, start_dovecot, unavailable_reason
from mailproto.imap import parse_command, parse_response
from mailproto.imap import responses as r
from mailproto.message._model import parse_message
from mailproto.message._search import MessageInfo, UnknownCharset, search, search_messages
from mailproto.message._sort import sort
from mailproto.message._thread import thread

if TYPE_CHECKING:
    from conftest import RequireTool  # noqa: F401

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
OWN_CORPUS = ROOT / "tests" / "vectors" / "messages"
FIRST_TIME = 1_767_225_600  # 2026-01-01 00:00:00 UTC: message i arrives i seconds later


def _crlf(data: bytes) -> bytes:
    if data.startswith(b"From "):
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def _cpython() -> list[bytes]:
    import importlib.util

    spec = importlib.util.find_spec("test")
    if spec is None or not spec.submodule_search_locations:
        return []
    directory = Path(spec.submodule_search_locations[0]) / "test_email" / "data"
    return [_crlf(p.read_bytes()) for p in sorted(directory.glob("msg_*.txt"))]


# Date order of the RFC 5256 mailbox; subjects and references make both examples.
_DATE_ORDER = [
    166, 167, 168, 169, 172, 170, 171, 173, 174, 175, 176, 178, 181, 180, 179, 177, 183,
    182, 188, 184, 185, 186, 187, 189, 190, 191, 192, 193, 194, 195, 196, 197, 198, 199,
    200, 201, 202, 203, 204, 205, 206, 207, 208, 209,
]  # fmt: skip


def rfc5256_mailbox() -> list[bytes]:
    def ids(*seqs: int) -> str:
        return " ".join(f"<{s}@example>" for s in seqs)

    spec: dict[int, tuple[str, str | None]] = {}
    for s in (170, 179):
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
    spec[196] = ("numbers", "<missing-d@example> " + ids(195))
    spec[197] = ("numbers (fwd)", None)
    spec[198] = ("Re: numbers", ids(197))
    spec[200] = ("lunch", None)
    spec[202] = ("Re: lunch", ids(200))
    spec[205] = ("trip", None)
    spec[206] = ("report", ids(205))
    spec[207] = ("Re: report", ids(205, 206))
    base = datetime.datetime(2000, 3, 5, tzinfo=datetime.UTC)
    out = []
    for seq in range(166, 210):
        subject, refs = spec.get(seq, (f"subject {seq}", None))
        when = base + datetime.timedelta(minutes=_DATE_ORDER.index(seq))
        lines = [
            f"Subject: {subject}",
            "Date: " + when.strftime("%a, %d %b %Y %H:%M:%S +0000"),
            f"Message-ID: <{seq}@example>",
        ]
        if refs:
            lines.append(f"References: {refs}")
        out.append(("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode())
    return out


_OWN_EXTRA = [
    "From: =?iso-8859-1?q?Andr=E9?= <andre@example.fr>\n"
    'To: "Zo\xc3\xab Q." <zoe@example.org>\n'
    "Subject: =?utf-8?B?w4dhIHZhIGJpZW4/?= =?utf-8?Q?_Tr=C3=A8s?=\n"
    "Date: Tue, 2 Apr 2024 08:00:00 +0200\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: quoted-printable\n\n"
    "Voil=E0 l'=E9t=E9, STRASSE\n",
    "From: Bob <bob@example.com>\n"
    "To: team: alice@example.com, carol@example.com;\n"
    "Subject: Re: [proj] Fwd: status (fwd)\n"
    "Date: Wed, 3 Apr 2024 09:00:00 -0700\n"
    "Content-Type: multipart/alternative; boundary=zz\n\n"
    "--zz\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
    "w5xuw69jw7Zkw6kgYm9keSB3aXRoIG5hw692ZSBjYWbDqQ==\n"
    "--zz\nContent-Type: text/html; charset=koi8-r\nContent-Transfer-Encoding: quoted-printable\n\n"
    "<p>=F0=D2=C9=D7=C5=D4 =CD=C9=D2</p>\n--zz--\n",
    "From: carol@example.com (Carol C)\n"
    "Cc: (hidden) list: ;\n"
    "Subject:    lots    of     space\there\n"
    "Date: 3 Apr 2024 10:00 +0000\n"
    "Content-Type: multipart/mixed; boundary=b1\n\n"
    "--b1\nContent-Type: text/plain\n\nsee attached\n"
    "--b1\nContent-Type: message/rfc822\n\n"
    "From: inner@example.com\nSubject: inner secret subject\n\n"
    "Inner body with the word xylophone.\n"
    "--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
    "eHlsb3Bob25lIGhpZGRlbg==\n--b1--\n",
]


def load_corpus() -> list[bytes]:
    own = [p.read_bytes() for p in sorted(OWN_CORPUS.glob("*.eml"))]
    extra = [_crlf(text.encode("latin-1")) for text in _OWN_EXTRA]
    return own + _cpython() + rfc5256_mailbox() + extra


CORPUS = load_corpus()


def _flags(i: int) -> list[str]:
    pattern = [(3, "\\Seen"), (5, "\\Flagged"), (4, "\\Answered"), (7, "$Junk"), (11, "\\Deleted")]
    return [flag for n, flag in pattern if i % n == 0]


QUERIES = [
    # flags, sets, sizes, internal dates
    "SEARCH ALL",
    "SEARCH SEEN",
    "SEARCH UNSEEN",
    "SEARCH NEW",
    "SEARCH OLD",
    "SEARCH RECENT",
    "SEARCH ANSWERED",
    "SEARCH DELETED",
    "SEARCH UNDELETED",
    "SEARCH FLAGGED",
    "SEARCH DRAFT",
    "SEARCH KEYWORD $junk",
    "SEARCH UNKEYWORD $Junk",
    "SEARCH LARGER 1000",
    "SEARCH SMALLER 500",
    "SEARCH 2:5,*",
    "SEARCH UID 10:*",
    "SEARCH UID 5000:*",
    "SEARCH NOT 1:50",
    "SEARCH OR SEEN (FLAGGED UNANSWERED)",
    "SEARCH SINCE 1-Jan-2026",
    "SEARCH ON 1-Jan-2026",
    "SEARCH BEFORE 1-Jan-2026",
    # the Date: header
    "SEARCH SENTON 5-Mar-2000",
    "SEARCH SENTSINCE 1-Jan-2000",
    "SEARCH SENTBEFORE 1-Jan-2000",
    "SEARCH SENTON 1-Jan-1970",
    # header fields
    'SEARCH FROM "example"',
    'SEARCH FROM ""',
    'SEARCH FROM "<"',
    'SEARCH FROM "("',
    'SEARCH FROM "carol c"',
    'SEARCH TO "\\""',
    'SEARCH TO "team: <alice"',
    'SEARCH TO "jdoe@test.example"',
    'SEARCH TO "missing_"',
    'SEARCH CC "hidden"',
    'SEARCH CC ""',
    'SEARCH BCC ""',
    'SEARCH SUBJECT "party"',
    'SEARCH SUBJECT ""',
    'SEARCH SUBJECT "lots of space here"',
    'SEARCH SUBJECT "lots    of"',
    'SEARCH HEADER "Subject" "lots    of"',
    'SEARCH HEADER "Cc" "hidden"',
    'SEARCH HEADER "Message-ID" ""',
    'SEARCH HEADER "X-Nonexistent" ""',
    'SEARCH HEADER "" ""',
    'SEARCH HEADER "Content-Type" "multipart"',
    # bodies and text
    'SEARCH BODY "the"',
    'SEARCH BODY "hello"',
    'SEARCH BODY "boundary"',
    'SEARCH BODY ""',
    'SEARCH BODY "xylophone"',
    'SEARCH TEXT "xylophone"',
    'SEARCH BODY "inner secret"',
    'SEARCH TEXT "inner secret"',
    'SEARCH TEXT "subject: lots"',
    'SEARCH TEXT "content-type"',
    'SEARCH TEXT ""',
    'SEARCH BODY "content-type"',
    'SEARCH BODY "subject"',
    'SEARCH BODY "no subtype"',
    'SEARCH BODY "="',
    'SEARCH CHARSET UTF-8 BODY "voil\xc3\xa0"',
    'SEARCH CHARSET UTF-8 BODY "\xc3\xbcn\xc3\xafc\xc3\xb6d\xc3\xa9"',
    'SEARCH CHARSET UTF-8 BODY "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"',
    'SEARCH CHARSET UTF-8 FROM "ANDR\xc3\x89"',
    'SEARCH CHARSET UTF-8 SUBJECT "\xc3\xa7a va"',
    'SEARCH CHARSET UTF-8 SUBJECT "gr\xc3\xbc\xc3\x9fe"',
    'SEARCH CHARSET UTF-8 SUBJECT "\xc3\xa9t\xc3\xa9"',
    'SEARCH CHARSET UTF-8 TO "fran\xc3\xa7ois"',
    'SEARCH CHARSET UTF-8 BODY "stra\xc3\x9fe"',
    'SEARCH CHARSET UTF-8 SUBJECT "tre"',
    'SEARCH CHARSET ISO-8859-1 BODY "voil\xe0"',
    'SEARCH CHARSET X-UNKNOWN BODY "x"',
    # SORT
    "SORT (ARRIVAL) UTF-8 ALL",
    "SORT (REVERSE SIZE) UTF-8 ALL",
    "SORT (DATE) UTF-8 ALL",
    "SORT (REVERSE DATE) UTF-8 ALL",
    "SORT (FROM SIZE) UTF-8 SEEN",
    "SORT (TO) UTF-8 ALL",
    "SORT (CC DATE) UTF-8 ALL",
    "SORT (DISPLAYFROM SUBJECT) UTF-8 ALL",
    "SORT (REVERSE DISPLAYTO) UTF-8 ALL",
    "SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
    # THREAD
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL",
    "THREAD REFERENCES UTF-8 SENTSINCE 5-Mar-2000",
]

_ASCII_CASEMAP = (
    "RFC 5256 3: SORT compares strings with i;ascii-casemap, so a base subject starting "
    "with a non-ASCII letter (the corpus' 'Ça va bien? Très') sorts after every ASCII "
    "one; Dovecot compares its titlecased, decomposed form and sorts it among the C's"
)
_MESSAGE_GLOBAL = (
    "RFC 6532 3.7 / RFC 9051 7.5.2: a message/global part encapsulates a message whose "
    "header is a header, not body text; Dovecot 2.3 searches its header as BODY text"
)
_DEFAULT_TEXT = (
    "RFC 2045 5.2: a syntactically invalid Content-Type is read as text/plain, so its "
    "body is text that BODY searches; Dovecot skips such bodies"
)
_DUPLICATE_CTE = (
    "the part's Content-Transfer-Encoding is the first of two fields (as its "
    "BODYSTRUCTURE says, see test_imap_message_dovecot); Dovecot decodes by the last"
)
_LATIN1_HEADER = (
    "RFC 6532 says header text is UTF-8 and is silent about other 8-bit bytes; we read "
    "each byte that is not UTF-8 as windows-1252 and find the Latin-1 words a user types, "
    "Dovecot replaces them with U+FFFD"
)

_CASE_FOLDING = (
    "RFC 9051 6.4.4 asks only for ASCII case-insensitivity; we fold with full Unicode "
    "case folding (so 'straße' finds 'STRASSE'), Dovecot with simple titlecase mappings"
)
_DECOMPOSED = (
    "a search string matches whole characters: 'tre' is not in 'Très'; Dovecot "
    "decomposes both sides and finds 't', 'r', 'e' followed by a combining accent"
)

KNOWN_DIFFERENCES: dict[str, str] = {
    'SEARCH BODY "content-type"': f"{_DEFAULT_TEXT}; and {_MESSAGE_GLOBAL}",
    'SEARCH BODY "subject"': _MESSAGE_GLOBAL,
    'SEARCH BODY "no subtype"': _DEFAULT_TEXT,
    'SEARCH BODY "="': f"{_DUPLICATE_CTE}; and {_MESSAGE_GLOBAL}",
    'SEARCH CHARSET UTF-8 SUBJECT "\xc3\xa9t\xc3\xa9"': _LATIN1_HEADER,
    'SEARCH CHARSET UTF-8 TO "fran\xc3\xa7ois"': _LATIN1_HEADER,
    'SEARCH CHARSET UTF-8 BODY "stra\xc3\x9fe"': _CASE_FOLDING,
    'SEARCH CHARSET UTF-8 SUBJECT "tre"': _DECOMPOSED,
    "SORT (SUBJECT REVERSE DATE) UTF-8 ALL": _ASCII_CASEMAP,
}


@pytest.fixture(scope="session")
def search_dovecot(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[tuple[imaplib.IMAP4, list[MessageInfo]]]:
    """A private Dovecot with the corpus and its flags; our view of the same mailbox."""
    from conftest import RequireTool, interop_required

    require = RequireTool(interop_required(pytestconfig))
    reason = unavailable_reason(("imap",))
    if reason is not None:
        require.unavailable(reason)
    # Its own directory, not pytest's temp root: another pytest run starting meanwhile
    # resets that root to 0700, which would lock Dovecot's users out mid-run.
    base = Path(tempfile.mkdtemp(prefix="mailproto-dovecot-search-"))
    maildir = base / "Maildir"
    deliver(maildir, CORPUS, first_time=FIRST_TIME)
    (base / "run").mkdir()
    server: Dovecot = start_dovecot(base / "run", maildir, private_root=base)
    client = imaplib.IMAP4(server.host, server.imap_port)
    try:
        client.login(server.user, server.password)
        client.select("INBOX")
        for i in range(1, len(CORPUS) + 1):
            if _flags(i):
                client.store(str(i), "+FLAGS.SILENT", "(" + " ".join(_flags(i)) + ")")
        _typ, lines = client.fetch("1:*", "(FLAGS RFC822.SIZE INTERNALDATE)")
        box = []
        for line, data in zip(lines, CORPUS, strict=True):
            assert isinstance(line, bytes)
            number, rest = line.split(b" ", 1)
            resp = parse_response(b"* " + number + b" FETCH " + rest)
            assert isinstance(resp, r.Fetch)
            got: dict[type, Any] = {type(a): a for a in resp.attributes}
            box.append(
                MessageInfo(
                    seq=resp.seq,
                    uid=resp.seq,  # the files are delivered in order: UID i is message i
                    flags=frozenset(got[r.FetchFlags].flags),
                    internal_date=got[r.InternalDate].value,
                    size=got[r.Rfc822Size].value,
                    load=lambda data=data: parse_message(data),  # type: ignore[misc]
                )
            )
        yield client, box
    finally:
        try:
            client.logout()
        finally:
            server.stop()
            shutil.rmtree(base, ignore_errors=True)
            left = instance_processes(server.instance)
            assert not left, f"Dovecot processes left behind: {left}"


def _dovecot(client: imaplib.IMAP4, query: bytes) -> list[bytes] | None:
    """Dovecot's untagged lines for the command, or None if it answered NO or BAD."""
    tag: bytes = client._new_tag()
    client.send(tag + b" " + query + b"\r\n")
    lines: list[bytes] = []
    while True:
        line: bytes = client._get_line()
        if line.startswith(tag + b" "):
            return lines if line[len(tag) + 1 :].startswith(b"OK") else None
        lines.append(line)


def _theirs(lines: list[bytes] | None, name: str) -> object:
    if lines is None:
        return "NO"
    for line in lines:
        resp = parse_response(line)
        if name == "THREAD" and isinstance(resp, r.Thread):
            return resp.threads
        if name == "SORT" and isinstance(resp, r.Sort):
            return list(resp.numbers)
        if name == "SEARCH" and isinstance(resp, r.Search):
            return list(resp.numbers)
    raise AssertionError(f"no {name} response in {lines!r}")


def _ours(query: bytes, box: list[MessageInfo]) -> object:
    command: Any = parse_command(b"X " + query + b"\r\n")
    try:
        if query.startswith(b"SEARCH"):
            return search(command.criteria, box, charset=command.charset)
        selected = search_messages(command.search, box, charset=command.charset)
    except UnknownCharset:
        return "NO"
    if query.startswith(b"SORT"):
        return sort(command.criteria, selected)
    return thread(command.algorithm, selected)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(q, marks=pytest.mark.xfail(reason=KNOWN_DIFFERENCES[q], strict=True))
        if q in KNOWN_DIFFERENCES
        else q
        for q in QUERIES
    ],
)
def test_search_sort_thread_match_dovecot(
    query: str, search_dovecot: tuple[imaplib.IMAP4, list[MessageInfo]]
) -> None:
    client, box = search_dovecot
    wire = query.encode("latin-1")
    theirs = _theirs(_dovecot(client, wire), query.split()[0])
    assert _ours(wire, box) == theirs
