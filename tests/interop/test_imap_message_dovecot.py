"""Differential test: our FETCH answers for a message equal Dovecot's (issue 5).

A private Dovecot (`dovecot_helpers`) serves a Maildir holding the corpus: the messages
written for each MIME corner in ``tests/vectors/messages/`` (see its README), then the
CPython email test messages (``test/test_email/data/msg_*.txt`` of the running Python,
read at test time; a leading mbox ``From `` line is dropped and LF becomes CRLF, as a
delivery agent would store them). The files are delivered as they are otherwise (bare
LF included), so message i gets UID i.

imaplib (a real client) fetches, once per session and over one connection, every item
below for every message; the untagged FETCH responses are put back together from
imaplib's pieces into their wire bytes and read with `mailproto.imap.parse_response`,
so what is compared are typed values (quoted or literal spelling does not matter):

- ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, INTERNALDATE;
- BODY[], BODY[HEADER], BODY[TEXT], BODY[HEADER.FIELDS (...)], BODY[HEADER.FIELDS.NOT
  (...)], BODY[]<0.10>, BODY[]<5.7>;
- RFC822, RFC822.HEADER, RFC822.TEXT (the mailbox is read-only: no \\Seen), BINARY[]
  and BINARY.SIZE[];
- for every part number n that Dovecot's BODYSTRUCTURE has, at any depth: BODY[n.MIME],
  BODY[n], BODY[n.HEADER], BODY[n.TEXT]; for every part that is not a multipart:
  BINARY[n] and BINARY.SIZE[n] (Dovecot's NO [UNKNOWN-CTE] is our None).

A FETCH that Dovecot refuses (NO, BAD, or BYE: it disconnects on some undecodable
parts) or that our parser cannot read is asked again one message and one item at a
time, so a failure stays with the one item that caused it.

Each (message, item) is a test case named ``<message>-<item>``; the per-part items
check every part and name each part that differs. The only way to accept a difference
is an entry in `KNOWN_DIFFERENCES` naming the RFC clause that makes Dovecot wrong (or
leaves the choice open); such a case is a strict xfail.
"""

from __future__ import annotations

import contextlib
import datetime
import imaplib
import importlib
import importlib.util
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dovecot_helpers import Dovecot, deliver, instance_processes, start_dovecot, unavailable_reason
from mailproto.imap import Section, parse_response, responses

if TYPE_CHECKING:
    from conftest import RequireTool

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
OWN_CORPUS = ROOT / "tests" / "vectors" / "messages"
FIRST_TIME = 1_767_225_600  # 2026-01-01 00:00:00 UTC: message i arrives i seconds later

HEADER_FIELDS = (b"From", b"Subject", b"X-Nonexistent")
HEADER_FIELDS_NOT = (b"From",)

# Item kinds, in test-id order. A "per-part" kind covers every part number n.
WHOLE_ITEMS = (
    "ENVELOPE",
    "BODYSTRUCTURE",
    "BODY",
    "RFC822.SIZE",
    "INTERNALDATE",
    "BODY[]",
    "BODY[HEADER]",
    "BODY[TEXT]",
    "BODY[HEADER.FIELDS]",
    "BODY[HEADER.FIELDS.NOT]",
    "BODY[]<0.10>",
    "BODY[]<5.7>",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "BINARY[]",
    "BINARY.SIZE[]",
)
PART_ITEMS = (
    "BODY[n.MIME]",
    "BODY[n]",
    "BODY[n.HEADER]",
    "BODY[n.TEXT]",
    "BINARY[n]",
    "BINARY.SIZE[n]",
)
ITEMS = WHOLE_ITEMS + PART_ITEMS

# Why our answer may differ from Dovecot 2.3.19's, each with the clause that backs ours.
_DUPLICATE_CTE = (
    "RFC 9051 6.4.5: BINARY undoes the Content-Transfer-Encoding that BODYSTRUCTURE "
    "reports for the part; with the field given twice, Dovecot's BODYSTRUCTURE reports "
    "the first (base64) but its BINARY applies the second (7bit)"
)
_BINARY_SECTION_CTE = (
    "RFC 9051 6.4.5 / RFC 3516 4.2: BINARY decodes the section's own "
    "Content-Transfer-Encoding (for BINARY[] and a message/rfc822 part that of the "
    "message, 7bit here) and BINARY.SIZE is the size of that BINARY; Dovecot decodes "
    "every nested part too (rewriting their headers to 'Content-Transfer-Encoding: "
    "binary'), refuses the whole section when a nested part has an unknown encoding, and "
    "for a base64 message/rfc822 part returns the encoded text with a BINARY.SIZE that "
    "is not its length"
)
_BINARY_ROBUST = (
    "RFC 2045 6.7 (a robust decoder keeps an invalid '=XX' as it is) and 6.8 (characters "
    "outside the base64 alphabet are ignored): we decode such parts; Dovecot answers NO "
    "[PARSE] (or fails with SERVERBUG), and refuses BINARY.SIZE even for the valid parts "
    "of the message, though RFC 9051 6.4.5 makes BINARY.SIZE the size of that section's "
    "BINARY, which it does return"
)
_BINARY_SIZE_OTHER_PART = (
    "RFC 9051 6.4.5: BINARY.SIZE[1] is the size of BINARY[1], a 7bit part that Dovecot "
    "does return; Dovecot answers NO [UNKNOWN-CTE] for it because another part of the "
    "message has an unknown encoding"
)
_MESSAGE_GLOBAL = (
    "RFC 9051 7.5.2 and 9 (media-message includes GLOBAL): a message/global part carries "
    "envelope, body and lines like message/rfc822, and n.HEADER / n.TEXT address its "
    "message; Dovecot 2.3 (IMAP4rev1) writes it as an RFC 3501 media-basic part"
)
_BARE_LF = (
    "RFC 5322 2.3: CR and LF occur only together, so a bare LF is not a line end the "
    "server may rewrite; the core serves the stored octets unchanged (issue 5: sections "
    "come from the original bytes), while Dovecot turns each bare LF into CRLF on output"
)
_EMPTY_PARAMETER = (
    "RFC 2045 5.1: a parameter value is a token or a quoted-string, and a quoted-string "
    'may be empty (RFC 5322 3.2.4), so empty="" is a parameter; Dovecot drops it'
)


def _known(message: str, reason: str, *kinds: str) -> dict[tuple[str, str], str]:
    return {(message, kind): reason for kind in kinds}


_BINARY_ALL = ("BINARY[]", "BINARY.SIZE[]", "BINARY[n]", "BINARY.SIZE[n]")
_WHOLE_BINARY = ("BINARY[]", "BINARY.SIZE[]")

# (message id, item kind) -> the RFC clause that justifies our answer differing from
# Dovecot's (a strict xfail). Nothing else may make a difference pass.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
    **_known("01-nested-multipart-3-deep.eml", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known("03-rfc822-containing-multipart.eml", _BINARY_SECTION_CTE, *_BINARY_ALL),
    **_known(
        "05-message-global.eml",
        _MESSAGE_GLOBAL,
        "BODYSTRUCTURE",
        "BODY",
        "BODY[n.HEADER]",
        "BODY[n.TEXT]",
    ),
    **_known("10-encoded-words.eml", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known("11-rfc2231-parameters.eml", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known("12-disposition-params.eml", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known("14-content-location.eml", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known(
        "22-bare-lf.eml",
        _BARE_LF,
        "RFC822.SIZE",
        "BODY[]",
        "BODY[HEADER]",
        "BODY[TEXT]",
        "BODY[HEADER.FIELDS]",
        "BODY[HEADER.FIELDS.NOT]",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.TEXT",
        "BODY[n.MIME]",
        "BODY[n]",
        *_BINARY_ALL,
    ),
    **_known("27-base64-qp-parts.eml", _BINARY_ROBUST, *_BINARY_ALL),
    **_known("28-unknown-cte.eml", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known("28-unknown-cte.eml", _BINARY_SIZE_OTHER_PART, "BINARY.SIZE[n]"),
    **_known("29-type-case.eml", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known("33-odd-params-and-headers.eml", _EMPTY_PARAMETER, "BODYSTRUCTURE", "BODY"),
    **_known("35-rfc822-base64.eml", _BINARY_SECTION_CTE, "BINARY.SIZE[]", "BINARY[n]"),
    **_known("35-rfc822-base64.eml", _BINARY_SECTION_CTE, "BINARY.SIZE[n]"),
    **_known("46-duplicate-content-headers.eml", _DUPLICATE_CTE, "BINARY[n]", "BINARY.SIZE[n]"),
    **_known("cpython-msg_07.txt", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known("cpython-msg_10.txt", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known("cpython-msg_13.txt", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known("cpython-msg_15.txt", _BINARY_ROBUST, *_BINARY_ALL),
    **_known("cpython-msg_22.txt", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known("cpython-msg_26.txt", _BINARY_SECTION_CTE, *_WHOLE_BINARY),
    **_known("cpython-msg_39.txt", _BINARY_ROBUST, *_BINARY_ALL),
}


# --- the corpus -----------------------------------------------------------------------


def cpython_data_dir() -> Path | None:
    """``test/test_email/data`` of this Python, or None if it ships without tests."""
    spec = importlib.util.find_spec("test")
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(spec.submodule_search_locations[0]) / "test_email" / "data"
    return directory if directory.is_dir() and any(directory.glob("msg_*.txt")) else None


def _as_delivered(data: bytes) -> bytes:
    """A CPython test file as a delivery agent stores it: no mbox ``From `` line, and
    CRLF line ends (the files have LF because they live in a source tree)."""
    if data.startswith(b"From "):
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


@dataclass(frozen=True)
class CorpusMessage:
    id: str  # the file name, which names the test cases
    data: bytes  # exactly what is delivered to Dovecot and given to parse_message


def load_corpus() -> list[CorpusMessage]:
    own = [CorpusMessage(p.name, p.read_bytes()) for p in sorted(OWN_CORPUS.glob("*.eml"))]
    directory = cpython_data_dir()
    cpython = []
    if directory is not None:
        for p in sorted(directory.glob("msg_*.txt")):
            cpython.append(CorpusMessage(f"cpython-{p.name}", _as_delivered(p.read_bytes())))
    return own + cpython


CORPUS = load_corpus()
CPYTHON_MISSING = cpython_data_dir() is None


# --- Dovecot's side -------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """Dovecot answered NO or BAD to a FETCH of this one item (or never sent it)."""

    text: str


@dataclass(frozen=True)
class Unreadable:
    """Our response parser could not read Dovecot's FETCH response."""

    error: str
    wire: bytes


@dataclass(frozen=True)
class Item:
    """One FETCH item: what to send, and the key its answer is filed under."""

    kind: str
    fetch: str  # e.g. "BODY.PEEK[1.2.MIME]"
    key: tuple[object, ...]
    section: Section | None = None
    partial: tuple[int, int] | None = None
    part: tuple[int, ...] = ()


def _section_key(section: Section, origin: int | None) -> tuple[object, ...]:
    fields = tuple(f.upper() for f in section.fields)
    return ("BODY", section.part, section.text, fields, origin)


def _section_item(kind: str, section: Section, partial: tuple[int, int] | None = None) -> Item:
    spec = section.to_bytes().decode("ascii")
    suffix = f"<{partial[0]}.{partial[1]}>" if partial else ""
    key = _section_key(section, partial[0] if partial else None)
    return Item(kind, f"BODY.PEEK[{spec}]{suffix}", key, section, partial, section.part)


def whole_items() -> list[Item]:
    items = [
        Item("ENVELOPE", "ENVELOPE", ("ENVELOPE",)),
        Item("BODYSTRUCTURE", "BODYSTRUCTURE", ("BODYSTRUCTURE",)),
        Item("BODY", "BODY", ("BODY",)),
        Item("RFC822.SIZE", "RFC822.SIZE", ("RFC822.SIZE",)),
        Item("INTERNALDATE", "INTERNALDATE", ("INTERNALDATE",)),
        _section_item("BODY[]", Section()),
        _section_item("BODY[HEADER]", Section(text="HEADER")),
        _section_item("BODY[TEXT]", Section(text="TEXT")),
        _section_item("BODY[HEADER.FIELDS]", Section(text="HEADER.FIELDS", fields=HEADER_FIELDS)),
        _section_item(
            "BODY[HEADER.FIELDS.NOT]", Section(text="HEADER.FIELDS.NOT", fields=HEADER_FIELDS_NOT)
        ),
        _section_item("BODY[]<0.10>", Section(), (0, 10)),
        _section_item("BODY[]<5.7>", Section(), (5, 7)),
        # RFC 3501 6.4.5: the same as BODY[], BODY.PEEK[HEADER] and BODY[TEXT]; the
        # mailbox is selected read-only, so RFC822 and RFC822.TEXT set no \Seen.
        Item("RFC822", "RFC822", ("RFC822",), Section()),
        Item("RFC822.HEADER", "RFC822.HEADER", ("RFC822.HEADER",), Section(text="HEADER")),
        Item("RFC822.TEXT", "RFC822.TEXT", ("RFC822.TEXT",), Section(text="TEXT")),
        Item("BINARY[]", "BINARY.PEEK[]", ("BINARY", (), None)),
        Item("BINARY.SIZE[]", "BINARY.SIZE[]", ("BINARY.SIZE", ())),
    ]
    assert [i.kind for i in items] == list(WHOLE_ITEMS)
    return items


def enumerate_parts(body: responses.BodyType) -> list[tuple[tuple[int, ...], responses.BodyType]]:
    """Every part number of a message whose body is ``body``, with the part's
    structure, depth first (RFC 3501 6.4.5: a non-multipart body is part 1; the parts
    of a message/rfc822 part n are numbered under n, its single body is n.1)."""
    out: list[tuple[tuple[int, ...], responses.BodyType]] = []

    def message_body(b: responses.BodyType, prefix: tuple[int, ...]) -> None:
        if isinstance(b, responses.BodyMultipart):
            for i, child in enumerate(b.parts, 1):
                part(child, (*prefix, i))
        else:
            part(b, (*prefix, 1))

    def part(b: responses.BodyType, number: tuple[int, ...]) -> None:
        out.append((number, b))
        if isinstance(b, responses.BodyMultipart):
            for i, child in enumerate(b.parts, 1):
                part(child, (*number, i))
        elif isinstance(b, responses.BodyMessage):
            message_body(b.body, number)

    message_body(body, ())
    return out


def part_items(body: responses.BodyType) -> tuple[list[Item], list[Item]]:
    """(section items, binary items) for every part of ``body``."""
    sections: list[Item] = []
    binaries: list[Item] = []
    for number, b in enumerate_parts(body):
        sections.append(_section_item("BODY[n.MIME]", Section(number, "MIME")))
        sections.append(_section_item("BODY[n]", Section(number)))
        sections.append(_section_item("BODY[n.HEADER]", Section(number, "HEADER")))
        sections.append(_section_item("BODY[n.TEXT]", Section(number, "TEXT")))
        if not isinstance(b, responses.BodyMultipart):
            spec = ".".join(map(str, number))
            binaries.append(
                Item("BINARY[n]", f"BINARY.PEEK[{spec}]", ("BINARY", number, None), part=number)
            )
            binaries.append(
                Item("BINARY.SIZE[n]", f"BINARY.SIZE[{spec}]", ("BINARY.SIZE", number), part=number)
            )
    return sections, binaries


def attribute_key(a: responses.FetchAttribute) -> tuple[object, ...] | None:
    if isinstance(a, responses.EnvelopeItem):
        return ("ENVELOPE",)
    if isinstance(a, responses.BodyStructure):
        return ("BODYSTRUCTURE",)
    if isinstance(a, responses.Body):
        return ("BODY",)
    if isinstance(a, responses.Rfc822Size):
        return ("RFC822.SIZE",)
    if isinstance(a, responses.InternalDate):
        return ("INTERNALDATE",)
    if isinstance(a, responses.BodySection):
        return _section_key(a.section, a.origin)
    if isinstance(a, responses.Binary):
        return ("BINARY", a.part, a.origin)
    if isinstance(a, responses.BinarySize):
        return ("BINARY.SIZE", a.part)
    if isinstance(a, responses.Rfc822):
        return ("RFC822",)
    if isinstance(a, responses.Rfc822Header):
        return ("RFC822.HEADER",)
    if isinstance(a, responses.Rfc822Text):
        return ("RFC822.TEXT",)
    return None


def wire_responses(pieces: list[Any]) -> list[bytes]:
    """imaplib's FETCH data back into the wire bytes of each untagged response.

    imaplib gives ``(line up to and with "{n}", literal)`` for every literal and the
    rest of the line as bytes: a bytes piece ends a response. The first line lacks
    ``* `` and ``FETCH`` (``b"3 (ENVELOPE ..."``)."""
    out: list[bytes] = []
    current = b""
    for piece in pieces:
        if piece is None:
            continue
        if isinstance(piece, tuple):
            current += piece[0] + b"\r\n" + piece[1]
            continue
        current += piece
        number, _, rest = current.partition(b" ")
        out.append(b"* " + number + b" FETCH " + rest)
        current = b""
    return out


@dataclass
class DovecotAnswers:
    """Everything Dovecot said, per message id: FETCH item key -> typed value."""

    values: dict[str, dict[tuple[object, ...], object]] = field(default_factory=dict)
    raw_internaldate: dict[str, bytes] = field(default_factory=dict)
    parts: dict[str, list[Item]] = field(default_factory=dict)  # per-part items asked
    problems: dict[str, list[str]] = field(default_factory=dict)  # whole-message errors


class Fetcher:
    """One imaplib connection; FETCH with fallback to one item at a time on NO/BAD."""

    def __init__(self, server: Dovecot) -> None:
        self.server = server
        self.conn = self.connect()

    def connect(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.server.host, self.server.imap_port, timeout=30)
        conn.login(self.server.user, self.server.password)
        typ, data = conn.select("INBOX", readonly=True)
        assert typ == "OK", data
        self.exists = int(data[0] or b"0")
        return conn

    def close(self) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.conn.logout()

    def _fetch(self, seqs: str, items: list[Item]) -> tuple[str, str, list[Any]]:
        self.conn.untagged_responses.pop("FETCH", None)
        spec = "(" + " ".join(i.fetch for i in items) + ")"
        try:
            typ, data = self.conn.fetch(seqs, spec)
        except imaplib.IMAP4.abort as exc:  # BYE: Dovecot gave up on the connection
            self.close()
            self.conn = self.connect()
            return "BYE", str(exc), []
        except imaplib.IMAP4.error as exc:  # BAD
            self.conn.untagged_responses.pop("FETCH", None)
            return "BAD", str(exc), []
        if typ != "OK":
            pieces = self.conn.untagged_responses.pop("FETCH", [])
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            return typ, text, pieces
        return typ, "", data

    def fetch(self, seqs: str, items: list[Item], file: Callable[[int, bytes], None]) -> str | None:
        """FETCH ``items`` of ``seqs``; hand each response's wire bytes to ``file``.
        Returns None, or the NO/BAD text."""
        typ, text, data = self._fetch(seqs, items)
        if typ != "OK":
            return f"{typ} {text}"
        for wire in wire_responses(data):
            seq = int(wire.split(b" ", 2)[1])
            file(seq, wire)
        return None


def structure_for_parts(answer: object) -> responses.BodyType | None:
    """Dovecot's BODYSTRUCTURE, to enumerate part numbers with.

    Dovecot 2.3 (IMAP4rev1) writes message/global as a basic body (RFC 3501 9
    media-basic), which our reader refuses (IMAP4rev2 makes it body-type-msg); to walk
    its parts anyway, it is read as an application type here, which numbers the same."""
    if isinstance(answer, responses.BodyStructure):
        return answer.body
    if isinstance(answer, Unreadable):
        wire = re.sub(
            rb'"message" "global"',
            b'"application" "x-message-global"',
            answer.wire,
            flags=re.IGNORECASE,
        )
        with contextlib.suppress(Exception):
            response = parse_response(wire)
            if isinstance(response, responses.Fetch):
                found = response.get(responses.BodyStructure)
                if isinstance(found, responses.BodyStructure):
                    return found.body
    return None


def collect(server: Dovecot, corpus: list[CorpusMessage]) -> DovecotAnswers:
    answers = DovecotAnswers()
    ids = {i + 1: m.id for i, m in enumerate(corpus)}
    for m in corpus:
        answers.values[m.id] = {}
        answers.problems[m.id] = []

    def filer(unreadable: dict[int, Unreadable]) -> Callable[[int, bytes], None]:
        def file(seq: int, wire: bytes) -> None:
            mid = ids[seq]
            try:
                response = parse_response(wire)
            except Exception as exc:
                unreadable[seq] = Unreadable(f"{type(exc).__name__}: {exc}", wire)
                return
            if not isinstance(response, responses.Fetch):
                answers.problems[mid].append(f"not a FETCH response: {wire[:200]!r}")
                return
            for a in response.attributes:
                key = attribute_key(a)
                if key is None:
                    continue
                if key == ("INTERNALDATE",):
                    found = re.search(rb'INTERNALDATE ("[^"]*")', wire)
                    if found:
                        answers.raw_internaldate[mid] = found.group(1)
                answers.values[mid][key] = a

        return file

    def fetch_with_fallback(seqs: list[int], items: list[Item]) -> None:
        """FETCH; what fails (NO, BAD, BYE, or a response our parser cannot read) is
        asked again one message, then one item, at a time, so that a failure stays
        with the one item that caused it."""
        if not items or not seqs:
            return
        unreadable: dict[int, Unreadable] = {}
        error = fetcher.fetch(",".join(map(str, seqs)), items, filer(unreadable))
        if error is None:
            for seq, problem in unreadable.items():
                if len(items) > 1:
                    for item in items:
                        fetch_with_fallback([seq], [item])
                else:
                    answers.values[ids[seq]][items[0].key] = problem
        elif len(seqs) > 1:
            for seq in seqs:
                fetch_with_fallback([seq], items)
        elif len(items) > 1:
            for item in items:
                fetch_with_fallback(seqs, [item])
        else:
            answers.values[ids[seqs[0]]][items[0].key] = Refused(error)

    fetcher = Fetcher(server)
    try:
        assert fetcher.exists == len(corpus), (fetcher.exists, len(corpus))
        typ, data = fetcher.conn.fetch("1:*", "(UID)")
        assert typ == "OK", data
        for wire in wire_responses(data):
            response = parse_response(wire)
            assert isinstance(response, responses.Fetch)
            uid = response.get(responses.Uid)
            if uid != responses.Uid(value=response.seq):  # delivery order is UID order
                answers.problems[ids[response.seq]].append(f"message {response.seq} has {uid}")
        fetch_with_fallback(list(ids), whole_items())
        for seq, mid in ids.items():
            structure = structure_for_parts(answers.values[mid].get(("BODYSTRUCTURE",)))
            if structure is None:
                answers.problems[mid].append("no BODYSTRUCTURE from Dovecot to walk")
                continue
            sections, binaries = part_items(structure)
            answers.parts[mid] = sections + binaries
            fetch_with_fallback([seq], sections)
            fetch_with_fallback([seq], binaries)
    finally:
        fetcher.close()
    return answers


@pytest.fixture(scope="session")
def message_dovecot(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Dovecot]:
    """One private Dovecot with the whole corpus delivered, for the session."""
    from conftest import RequireTool, interop_required

    require = RequireTool(interop_required(pytestconfig))
    reason = unavailable_reason(("imap",))
    if reason is not None:
        require.unavailable(reason)
    # Its own directory, not pytest's temp root: another pytest run starting meanwhile
    # resets that root to 0700, which would lock Dovecot's users out mid-run.
    base = Path(tempfile.mkdtemp(prefix="mailproto-dovecot-message-"))
    maildir = base / "Maildir"
    deliver(maildir, [m.data for m in CORPUS], first_time=FIRST_TIME)
    (base / "run").mkdir()
    server = start_dovecot(
        base / "run",
        maildir,
        private_root=base,
        # A part it cannot decode (BINARY of broken base64) gets NO, not a disconnection.
        extra_config="imap_fetch_failure = no-after\n",
    )
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        left = instance_processes(server.instance)
        assert not left, f"Dovecot processes left behind: {left}"


@pytest.fixture(scope="session")
def dovecot_answers(message_dovecot: Dovecot) -> DovecotAnswers:
    return collect(message_dovecot, CORPUS)


# --- our side -------------------------------------------------------------------------

_parsed: dict[str, Any] = {}


# Where the contract puts each function, if the package does not export it (yet).
_MODULES = {"envelope": "_envelope", "body_structure": "_bodystructure"}


class _Ours:
    """``mailproto.message``'s functions, imported when a case runs (typed loosely on
    purpose: this test must load while that package is being written)."""

    def __getattr__(self, name: str) -> Any:
        package = importlib.import_module("mailproto.message")
        if hasattr(package, name):
            return getattr(package, name)
        module = importlib.import_module(f"mailproto.message.{_MODULES.get(name, name)}")
        return getattr(module, name)


def ours() -> Any:
    return _Ours()


def ours_message(m: CorpusMessage) -> Any:
    if m.id not in _parsed:
        _parsed[m.id] = ours().parse_message(m.data)
    return _parsed[m.id]


def diff(a: object, b: object, path: str = "") -> list[str]:
    """Where two values differ, as ``path: dovecot=... ours=...`` lines."""
    if type(a) is not type(b):
        return [f"{path or '.'}: dovecot={a!r} ours={b!r}"]
    if isinstance(a, tuple) and isinstance(b, tuple):
        if len(a) != len(b):
            return [f"{path or '.'}: dovecot={a!r} ours={b!r}"]
        out: list[str] = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += diff(x, y, f"{path}[{i}]")
        return out
    fields = getattr(type(a), "__attrs_attrs__", None)
    if fields is not None:
        out = []
        for f in fields:
            out += diff(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
        return out
    return [] if a == b else [f"{path or '.'}: dovecot={a!r} ours={b!r}"]


def short(value: object, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def dovecot_value(value: object) -> object:
    """The comparable value inside Dovecot's attribute (None for a refusal)."""
    if isinstance(value, responses.EnvelopeItem):
        return value.envelope
    if isinstance(value, responses.BodyStructure | responses.Body):
        return value.body
    if isinstance(value, responses.Rfc822Size):
        return value.value
    if isinstance(
        value,
        responses.BodySection
        | responses.Binary
        | responses.Rfc822
        | responses.Rfc822Header
        | responses.Rfc822Text,
    ):
        return value.data
    if isinstance(value, responses.BinarySize):
        return value.size
    if isinstance(value, Refused):
        return None
    return value


def ours_value(m: CorpusMessage, item: Item) -> object:
    mm = ours()
    msg = ours_message(m)
    if item.kind == "ENVELOPE":
        return mm.envelope(msg)
    if item.kind == "BODYSTRUCTURE":
        return mm.body_structure(msg, extensible=True)
    if item.kind == "BODY":
        return mm.body_structure(msg, extensible=False)
    if item.kind == "RFC822.SIZE":
        return msg.size
    if item.kind in ("BINARY[n]", "BINARY[]"):
        return mm.binary(msg, item.part)
    if item.kind in ("BINARY.SIZE[n]", "BINARY.SIZE[]"):
        return mm.binary_size(msg, item.part)
    assert item.section is not None
    return mm.section(msg, item.section, item.partial)


def bytes_difference(theirs: bytes, ours: bytes) -> str:
    """Lengths, and both sides around the first octet where they differ."""
    common = min(len(theirs), len(ours))
    at = next((i for i in range(common) if theirs[i] != ours[i]), common)
    start = max(0, at - 30)
    return (
        f"{len(theirs)} octets from dovecot, {len(ours)} ours; first difference at {at}: "
        f"dovecot=...{theirs[start : at + 40]!r} ours=...{ours[start : at + 40]!r}"
    )


def compare_item(m: CorpusMessage, item: Item, theirs: object) -> list[str]:
    label = item.fetch.replace(".PEEK", "")
    if theirs is None:
        return [f"{label}: Dovecot sent no answer"]
    if isinstance(theirs, Unreadable):
        return [
            f"{label}: parse_response failed on Dovecot's answer: {theirs.error}; "
            f"wire={short(theirs.wire, 600)}"
        ]
    if isinstance(theirs, Refused) and not item.kind.startswith("BINARY"):
        return [f"{label}: Dovecot refused: {theirs.text}"]
    expected = dovecot_value(theirs)
    got = ours_value(m, item)
    if expected == got:
        return []
    if isinstance(expected, bytes) and isinstance(got, bytes):
        return [f"{label}: {bytes_difference(expected, got)}"]
    lines = diff(expected, got)
    head = f"{label}: dovecot={short(expected)} ours={short(got)}"
    if isinstance(theirs, Refused):
        head += f" (Dovecot: {theirs.text})"
    if len(lines) == 1 and lines[0].startswith(".:"):
        return [head]
    return [head, *(f"    {line}" for line in lines[:20])]


def check_internaldate(m: CorpusMessage, answers: DovecotAnswers) -> list[str]:
    mm = ours()
    theirs = answers.values[m.id].get(("INTERNALDATE",))
    raw = answers.raw_internaldate.get(m.id)
    if not isinstance(theirs, responses.InternalDate) or raw is None:
        return [f"INTERNALDATE: no usable answer from Dovecot: {theirs!r}"]
    index = [c.id for c in CORPUS].index(m.id)
    arrived = datetime.datetime.fromtimestamp(FIRST_TIME + index, datetime.UTC)
    problems = []
    if theirs.value != arrived:
        problems.append(f"INTERNALDATE: Dovecot={theirs.value} but the file's mtime is {arrived}")
    # Typed, not byte for byte: date-day-fixed is (SP DIGIT) / 2DIGIT (RFC 3501 9), so
    # " 1-Jan-2026" and Dovecot's "01-Jan-2026" are the same date.
    formatted = mm.format_internal_date(theirs.value)
    wire = b"* 1 FETCH (INTERNALDATE " + b'"' + formatted.strip(b'"') + b'")'
    try:
        reread = parse_response(wire)
    except Exception as exc:
        problems.append(f"format_internal_date gave {formatted!r}, unreadable: {exc}")
    else:
        if not isinstance(reread, responses.Fetch) or reread.get(
            responses.InternalDate
        ) != responses.InternalDate(value=theirs.value):
            problems.append(f"format_internal_date: dovecot={raw!r} ours={formatted!r}")
    parsed = mm.parse_internal_date(raw.strip(b'"'))
    if parsed != theirs.value or parsed.utcoffset() != theirs.value.utcoffset():
        problems.append(f"parse_internal_date({raw!r}) = {parsed!r}, not {theirs.value!r}")
    return problems


# --- the cases ------------------------------------------------------------------------


def _cases() -> list[Any]:
    cases = []
    for m in CORPUS:
        for kind in ITEMS:
            marks = []
            reason = KNOWN_DIFFERENCES.get((m.id, kind))
            if reason is not None:
                marks.append(pytest.mark.xfail(reason=reason, strict=True))
            cases.append(pytest.param(m, kind, id=f"{m.id}-{kind}", marks=marks))
    if CPYTHON_MISSING:
        cases.append(pytest.param(None, "cpython-corpus", id="cpython-corpus-missing"))
    return cases


@pytest.mark.parametrize(("message", "kind"), _cases())
def test_fetch_matches_dovecot(
    message: CorpusMessage | None,
    kind: str,
    request: pytest.FixtureRequest,
    require_tool: RequireTool,
) -> None:
    if message is None:
        require_tool.unavailable(
            "the CPython email test messages (test/test_email/data) are not installed"
        )
        return
    answers: DovecotAnswers = request.getfixturevalue("dovecot_answers")
    problems = list(answers.problems[message.id])
    if kind == "INTERNALDATE":
        problems += check_internaldate(message, answers)
    elif kind in WHOLE_ITEMS:
        item = next(i for i in whole_items() if i.kind == kind)
        problems += compare_item(message, item, answers.values[message.id].get(item.key))
    else:
        for item in answers.parts.get(message.id, []):
            if item.kind == kind:
                problems += compare_item(message, item, answers.values[message.id].get(item.key))
    if len(problems) > 12:
        problems[12:] = [f"... and {len(problems) - 12} more"]
    if problems:
        pytest.fail(f"{message.id} {kind}:\n" + "\n".join(problems), pytrace=False)


def test_corpus_has_every_corner() -> None:
    """The hand-written corpus is there, with its README naming every file."""
    names = sorted(p.name for p in OWN_CORPUS.glob("*.eml"))
    assert len(names) >= 25
    readme = (OWN_CORPUS / "README.md").read_text()
    missing = [n for n in names if n not in readme]
    assert not missing, f"not described in README.md: {missing}"
