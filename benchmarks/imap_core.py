"""Benchmark of the IMAP core: client-side parsing of a FETCH response stream.

Run with ``python benchmarks/imap_core.py``. Everything happens in memory, in one
process, timed with `time.perf_counter` (``--clock process``: CPU time); each figure is
the best of several runs.

The stream: 10,000 ``* n FETCH (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE
BODYSTRUCTURE)`` responses and the tagged completion, as a server answers
``FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)``. Messages are
generated deterministically: plain text, multipart/alternative, multipart/mixed with
attachments and forwarded message/rfc822 parts, address lists with several recipients,
encoded-word subjects, and now and then a subject with CR/LF sent as a literal.

- ours: the stream fed in 64 KiB chunks to a `ReceiveBuffer`, framed into messages by
  the `Fragmentizer` (literals accepted), each message parsed by `parse_response` into
  typed values.
- peer: the usual Python stack. `imaplib.IMAP4` (not connected; its ``file`` is an
  `io.BytesIO` over the same bytes) reads the responses with its own ``_get_response``
  until the tagged completion, and `imapclient.response_parser.parse_fetch_response`
  parses what imaplib collected for FETCH.

MB/s count wire octets (1 MB = 10**6 octets). The target is at least 2x the peer.
"""

from __future__ import annotations

import argparse
import datetime
import imaplib
import io
import random
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from imapclient.response_parser import parse_fetch_response  # type: ignore[import-untyped]

import report
from mailproto._buffer import ReceiveBuffer
from mailproto.imap import _responses as r
from mailproto.imap._fragment import Fragmentizer, LiteralAnnouncement
from mailproto.imap._grammar import dump
from mailproto.imap._response_codec import format_response, parse_response

MESSAGES = 10_000
CHUNK = 65536
TARGET_RATIO = 2.0

FIRST = [
    "Alice",
    "Bob",
    "Carol",
    "Dave",
    "Eve",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Victor",
    "Walter",
]
LAST = [
    "Smith",
    "Jones",
    "Müller",
    "Dubois",
    "Rossi",
    "García",
    "Nowak",
    "Svensson",
    "Kim",
    "O'Brien",
    "van der Berg",
    "Tanaka",
]
DOMAINS = [
    "example.com",
    "example.org",
    "mail.example.net",
    "lists.example.edu",
    "corp.example.co.uk",
]
WORDS = ["meeting", "report", "quarterly", "budget", "re:", "fwd:", "invoice", "draft",
         "minutes", "release", "plan", "update", "question", "lunch", "review", "urgent",
         "the", "for", "and", "of", "project", "status", "notes", "proposal"]  # fmt: skip
FLAG_SETS = [(), ("\\Seen",), ("\\Seen", "\\Answered"), ("\\Seen", "\\Flagged"),
             ("\\Seen", "$Forwarded", "$NotJunk"), ("\\Deleted", "\\Seen")]  # fmt: skip


def _encoded_word(text: str) -> bytes:
    import base64

    return b"=?UTF-8?B?" + base64.b64encode(text.encode()) + b"?="


def _address(rnd: random.Random) -> r.Address:
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    name: bytes | None
    full = f"{first} {last}"
    if rnd.random() < 0.15:
        name = None
    elif full.isascii():
        name = full.encode()
    else:
        name = _encoded_word(full)
    mailbox = f"{first.lower()}.{re.sub('[^a-z]', '', last.lower())}".encode()
    return r.Address(name=name, mailbox=mailbox, host=rnd.choice(DOMAINS).encode())


def _addresses(rnd: random.Random, low: int, high: int) -> tuple[r.Address, ...] | None:
    n = rnd.randint(low, high)
    return tuple(_address(rnd) for _ in range(n)) if n else None


def _subject(rnd: random.Random) -> bytes:
    words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 9)))
    if rnd.random() < 0.1:
        return _encoded_word(words + " \u2013 " + rnd.choice(LAST))
    if rnd.random() < 0.01:
        return words.encode() + b"\r\n folded"  # sent as a literal
    return words.capitalize().encode()


def _envelope(rnd: random.Random, when: datetime.datetime) -> r.Envelope:
    sender = _addresses(rnd, 1, 1)
    return r.Envelope(
        date=when.strftime("%a, %d %b %Y %H:%M:%S %z").encode(),
        subject=_subject(rnd),
        from_=sender,
        sender=sender,
        reply_to=sender,
        to=_addresses(rnd, 1, 4),
        cc=_addresses(rnd, 0, 3),
        bcc=None,
        in_reply_to=(b"<%d.%d@example.com>" % (rnd.randrange(10**9), rnd.randrange(10**6)))
        if rnd.random() < 0.4
        else None,
        message_id=b"<%d.%d@%s>" % (rnd.randrange(10**12), rnd.randrange(10**6), b"mx.example"),
    )


def _text(rnd: random.Random, subtype: bytes) -> r.BodyText:
    size = rnd.randint(200, 60000)
    return r.BodyText(
        subtype=subtype,
        params=((b"CHARSET", rnd.choice([b"UTF-8", b"us-ascii", b"ISO-8859-1"])),),
        encoding=rnd.choice([b"7BIT", b"QUOTED-PRINTABLE", b"8BIT"]),
        size=size,
        lines=size // 60,
        ext_fields=4,
        location=None,
    )


def _attachment(rnd: random.Random) -> r.BodyBasic:
    kind, sub, ext = rnd.choice(
        [(b"APPLICATION", b"PDF", b"pdf"), (b"IMAGE", b"JPEG", b"jpg"),
         (b"APPLICATION", b"VND.OPENXMLFORMATS-OFFICEDOCUMENT.SPREADSHEETML.SHEET", b"xlsx"),
         (b"IMAGE", b"PNG", b"png")]
    )  # fmt: skip
    filename = b"%s_%d.%s" % (rnd.choice(WORDS).encode(), rnd.randrange(1000), ext)
    return r.BodyBasic(
        media_type=kind,
        subtype=sub,
        params=((b"NAME", filename),),
        encoding=b"BASE64",
        size=rnd.randint(10_000, 3_000_000),
        ext_fields=4,
        disposition=r.Disposition(type=b"ATTACHMENT", params=((b"FILENAME", filename),)),
    )


def _alternative(rnd: random.Random) -> r.BodyMultipart:
    return r.BodyMultipart(
        parts=(_text(rnd, b"PLAIN"), _text(rnd, b"HTML")),
        subtype=b"ALTERNATIVE",
        params=((b"BOUNDARY", b"----=_Part_%d" % rnd.randrange(10**8)),),
        ext_fields=4,
    )


def _body(rnd: random.Random, when: datetime.datetime) -> r.BodyType:
    x = rnd.random()
    if x < 0.45:
        return _text(rnd, b"PLAIN")
    if x < 0.75:
        return _alternative(rnd)
    parts: list[r.BodyType] = [_alternative(rnd) if rnd.random() < 0.6 else _text(rnd, b"PLAIN")]
    parts += [_attachment(rnd) for _ in range(rnd.randint(1, 3))]
    if rnd.random() < 0.15:
        inner = _text(rnd, b"PLAIN")
        parts.append(
            r.BodyMessage(
                envelope=_envelope(rnd, when),
                body=inner,
                lines=inner.lines + 20,
                encoding=b"7BIT",
                size=inner.size + 1200,
                ext_fields=4,
            )
        )
    return r.BodyMultipart(
        parts=tuple(parts),
        subtype=b"MIXED",
        params=((b"BOUNDARY", b"b1_%d" % rnd.randrange(10**10)),),
        ext_fields=4,
    )


def build_stream(n: int = MESSAGES, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    out = bytearray()
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    for seq in range(1, n + 1):
        when = start + datetime.timedelta(seconds=seq * 3001 + rnd.randrange(3000))
        body = _body(rnd, when)
        resp = r.Fetch(
            seq=seq,
            attributes=(
                r.FetchFlags(flags=rnd.choice(FLAG_SETS)),
                r.Uid(value=1000 + seq * 3),
                r.Rfc822Size(value=rnd.randint(1000, 5_000_000)),
                r.InternalDate(value=when),
                r.EnvelopeItem(envelope=_envelope(rnd, when)),
                r.BodyStructure(body=body),
            ),
        )
        out += dump(format_response(resp))
    out += b"A1 OK FETCH completed\r\n"
    return bytes(out)


# --- the two readers --------------------------------------------------------------------


def ours(stream: bytes) -> int:
    buf = ReceiveBuffer()
    frag = Fragmentizer(max_message_size=1 << 26, max_line_length=1 << 20)
    count = 0
    for i in range(0, len(stream), CHUNK):
        buf += stream[i : i + CHUNK]
        while True:
            msg = frag.next_message(buf)
            if msg is None:
                break
            if isinstance(msg, LiteralAnnouncement):
                frag.accept(buf)
                continue
            assert isinstance(msg, bytes)
            parse_response(msg)
            count += 1
    return count


def peer(stream: bytes) -> int:
    imap: Any = imaplib.IMAP4.__new__(imaplib.IMAP4)
    imap.debug = 0
    imap._cmd_log_len = 10
    imap._cmd_log_idx = 0
    imap._cmd_log = {}
    imap.tagged_commands = {b"A1": None}
    imap.untagged_responses = {}
    imap.continuation_response = ""
    imap._mode_ascii()
    imap.tagpre = b"A"
    imap.tagre = re.compile(rb"(?P<tag>A\d+) (?P<type>[A-Z]+) (?P<data>.*)", re.ASCII)
    imap.file = io.BytesIO(stream)
    while imap.tagged_commands[b"A1"] is None:
        imap._get_response()
    data = imap.untagged_responses.pop("FETCH")
    parsed = parse_fetch_response(data, normalise_times=True, uid_is_key=False)
    return len(parsed) + 1


def check(stream: bytes) -> None:
    """Both readers see the same messages (and ours round-trips them)."""
    assert ours(stream) == peer(stream) == MESSAGES + 1
    first = stream[: stream.index(b"\r\n* 2 FETCH") + 2]
    resp = parse_response(first)
    assert dump(format_response(resp)) == first
    assert isinstance(resp, r.Fetch)
    size = resp.get(r.Rfc822Size)
    assert isinstance(size, r.Rfc822Size)
    theirs = parse_fetch_response([first[2:-2].replace(b" FETCH", b"", 1)], uid_is_key=False)
    assert theirs[1][b"RFC822.SIZE"] == size.value


def best(fn: Callable[[bytes], Any], stream: bytes, runs: int, clock: Callable[[], float]) -> float:
    times = []
    for _ in range(runs):
        t0 = clock()
        fn(stream)
        times.append(clock() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--messages", type=int, default=MESSAGES)
    ap.add_argument("--clock", choices=["wall", "process"], default="wall")
    report.add_json_option(ap)
    args = ap.parse_args(argv)
    clock = time.process_time if args.clock == "process" else time.perf_counter
    stream = build_stream(args.messages)
    if args.messages == MESSAGES:
        check(stream)
    n = args.messages + 1
    mb = len(stream) / 1e6
    t_ours = best(ours, stream, args.runs, clock)
    t_peer = best(peer, stream, args.runs, clock)
    print(f"FETCH stream: {args.messages} messages + tagged OK, {mb:.2f} MB, best of {args.runs}")
    print(f"{'reader':<44} {'seconds':>8} {'MB/s':>8} {'responses/s':>12}")
    for name, t in (
        ("ours: Fragmentizer + parse_response (typed)", t_ours),
        ("peer: imaplib + imapclient parse_fetch_response", t_peer),
    ):
        print(f"{name:<44} {t:>8.3f} {mb / t:>8.2f} {n / t:>12.0f}")
    ratio = t_peer / t_ours
    verdict = "met" if ratio >= TARGET_RATIO else "not met"
    print(f"ratio ours/peer: {ratio:.2f}x (target >= {TARGET_RATIO:.1f}x): {verdict}")
    report.write_json(
        args.json,
        "imap_core",
        "IMAP core: client-side parsing of a FETCH stream (in memory)",
        [
            report.Row(
                f"FETCH 1:* (ENVELOPE BODYSTRUCTURE ...), {args.messages:,} responses",
                "MB/s",
                mb / t_ours,
                "imaplib + imapclient",
                mb / t_peer,
                target=TARGET_RATIO,
            )
        ],
        settings={"runs": args.runs, "messages": args.messages, "MB": round(mb, 2)},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
