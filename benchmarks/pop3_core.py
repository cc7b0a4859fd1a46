"""Benchmark of the POP3 core: client-side parsing of a RETR of a 10 MB message.

Run with ``python benchmarks/pop3_core.py``. Everything happens in memory, in one
process, with `time.perf_counter`; each figure is the best of several runs.

The message is realistic mail text built deterministically (seeded `random.Random`):
a header block, then a multipart/mixed body cycling through prose (lines of 0..998
octets, some starting with "."), quoted-printable HTML, a CSV export with long lines and
base64 attachments of various sizes. It is dot-stuffed once up front into the server's
wire bytes for the RETR response, ``+OK <n> octets\\r\\n`` + stuffed body + ``.\\r\\n``.

- ours: `mailproto.pop3.ClientConnection`, after a scripted greeting, USER/PASS login and
  ``send(Retr(msg=1))`` (all untimed), is fed the wire bytes in 64 KiB chunks; the timed
  loop consumes events (`Ok`, `ResponseData`..., `EndOfResponse`) until the end.
- DotReader alone: the same chunks through the `DotReader` the connection uses
  (``max_line_length=None, bare_line_endings="accept"``), without the connection.
- poplib: CPython's own `poplib.POP3._getlongresp` (the loop behind ``retr()``: one
  ``_getline`` per line, reading with ``file.readline``, un-stuffing "..") over the same
  bytes, read from an `io.BytesIO` in place of the socket file. No socket is made.

MB/s count wire octets (1 MB = 10**6 octets); both sides parse the same bytes, so the
ratio is a ratio of times. Before timing, both outputs are checked against the message.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import os
import platform
import poplib
import random
import sys
import textwrap
import time
from collections.abc import Callable, Sequence

import mailproto
from mailproto import NEED_DATA
from mailproto._dotdata import DotEnd, DotReader, DotStuffer
from mailproto.pop3 import (
    ClientConnection,
    EndOfResponse,
    Ok,
    Pass,
    ResponseData,
    Retr,
    User,
)

BODY_SIZE = 10_000_000  # octets of the message (unstuffed), cut at a line end
CHUNK = 64 * 1024
TARGET_RATIO = 3.0  # ours / poplib
MB = 1_000_000

# --- a deterministic 10 MB message of plausible mail text ------------------------------

_VOCABULARY = """
the of and to a in that is was he for it with as his on be at by this had not are but
from or have an they which one you were her all she there would their we him been has
when who will more no if out so said what up its about into than them can only other
new some could time these two may then do first any my now such like our over man me
even most made after also did many before must through back years where much your way
well down should because each just those people how too little state good very make
world still own see men work long get here between both life being under never day
same another know while last might us great old year off come since against go came
right used take three meeting schedule quarterly report attached please review budget
proposal deadline server migration invoice shipment customer account password reset
newsletter conference agenda minutes draft revision contract signature delivery order
tracking warehouse inventory forecast analysis feedback survey release candidate build
pipeline deployment rollback incident postmortem latency throughput capacity storage
backup restore mailbox calendar invitation reminder regards thanks cheers sincerely
"""
_WORDS = _VOCABULARY.split()

_NON_ASCII = ["café", "naïve", "Zürich", "façade", "déjà vu", "Größe", "señor", "résumé"]

# Lines that a POP3 server must dot-stuff: "." alone, "..", and text after a period.
_DOT_LINES = [
    ".",
    "..",
    "...",
    ". . .",
    ".signature",
    ".NET 8 migration notes follow below",
    "...and that was the end of the meeting.",
    ".htaccess and .env files must never be committed",
    ".\t(indented with a tab)",
    ". ",
]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 18))]
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), rng.choice(_NON_ASCII))
    if rng.random() < 0.1:
        words.append(f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}")
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice(".....?!;")


def _paragraph(rng: random.Random, sentences: tuple[int, int] = (2, 7)) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(*sentences)))


def _fit(line: str, limit: int = 998) -> str:
    """Cut a line so that its UTF-8 form has at most ``limit`` octets."""
    raw = line.encode()
    if len(raw) <= limit:
        return line
    return raw[:limit].decode("utf-8", "ignore")


def _headers(rng: random.Random, boundary: str) -> list[str]:
    lines = ["Return-Path: <sender@example.net>"]
    for hop in range(5):
        lines += [
            f"Received: from mx{hop}.relay.example.net (mx{hop}.relay.example.net "
            f"[192.0.2.{rng.randint(1, 254)}])",
            f"\tby pop.example.org (mailproto) with ESMTPS id {rng.getrandbits(64):016X}",
            f"\tfor <user@example.org>; Tue, 4 Jun 2024 {hop:02d}:17:42 +0000",
        ]
    lines += [
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=2024;",
        "\th=from:to:cc:subject:date:message-id:mime-version:content-type;",
        f"\tbh={base64.b64encode(rng.randbytes(32)).decode()};",
        *textwrap.wrap(
            "b=" + base64.b64encode(rng.randbytes(256)).decode(),
            76,
            initial_indent="\t",
            subsequent_indent="\t ",
        ),
        "From: Quarterly Reports <sender@example.net>",
        "To: " + ", ".join(f"<user{i}@example.org>" for i in range(3)),
        *textwrap.wrap(
            "Cc: " + ", ".join(f"team-{rng.choice(_WORDS)}@example.org" for _ in range(12)),
            76,
            subsequent_indent=" ",
        ),
        f"Subject: Re: {_sentence(rng)[:60]}",
        "Date: Tue, 4 Jun 2024 10:17:42 +0200",
        f"Message-ID: <{rng.getrandbits(96):024x}@example.net>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "",
        "This is a multi-part message in MIME format.",
        "",
    ]
    return lines


def _prose_part(rng: random.Random) -> list[str]:
    lines = ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", ""]
    for _ in range(rng.randint(25, 45)):
        roll = rng.random()
        if roll < 0.12:
            lines.append(rng.choice(_DOT_LINES))
        elif roll < 0.25:
            lines += ["> " + x for x in textwrap.wrap(_paragraph(rng), rng.randint(50, 74))]
        elif roll < 0.32:
            # One unwrapped paragraph, as many clients send them: up to 998 octets.
            lines.append(_fit(_paragraph(rng, (6, 14))))
        else:
            wrapped = textwrap.wrap(_paragraph(rng), rng.randint(60, 78))
            if rng.random() < 0.2:
                # A wrap that happens to put a period at the start of a line.
                wrapped.append("." + rng.choice(_WORDS))
            lines += wrapped
        lines.append("")
    lines += ["-- ", "Regards,", rng.choice(_WORDS).title(), ""]
    return lines


def _qp_part(rng: random.Random) -> list[str]:
    html = ["<html><body>"]
    for _ in range(rng.randint(15, 30)):
        html.append(f'<p style="margin:0 0 1em 0">{_paragraph(rng)}</p>')
        if rng.random() < 0.2:
            html.append("." + rng.choice(_WORDS))  # b2a_qp keeps a leading period here
    html.append("</body></html>")
    qp = binascii.b2a_qp("\n".join(html).encode(), istext=True).decode("ascii")
    lines = ["Content-Type: text/html; charset=utf-8"]
    lines += ["Content-Transfer-Encoding: quoted-printable", ""]
    lines += qp.split("\n")
    lines.append("")
    return lines


def _csv_part(rng: random.Random) -> list[str]:
    """A text attachment (a CSV export) with lines of every length from 0 to 998."""
    lines = ["Content-Type: text/csv; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    lines += ['Content-Disposition: attachment; filename="export.csv"', ""]
    for i in range(rng.randint(40, 80)):
        target = rng.choice((0, 998, rng.randint(0, 998), rng.randint(0, 200)))
        fields: list[str] = []
        while sum(len(f) + 1 for f in fields) < target:
            fields.append(rng.choice(_WORDS) if i % 3 else str(rng.getrandbits(32)))
        line = ",".join(fields)[:target]
        lines.append(("." + line[1:]) if line and rng.random() < 0.05 else line)
    lines.append("")
    return lines


def _base64_part(rng: random.Random, size: int) -> list[str]:
    kind, ext = rng.choice((("application/pdf", "pdf"), ("image/jpeg", "jpg")))
    name = f"{rng.choice(_WORDS)}-{rng.randint(1, 99)}.{ext}"
    lines = [f'Content-Type: {kind}; name="{name}"', "Content-Transfer-Encoding: base64"]
    lines += [f'Content-Disposition: attachment; filename="{name}"', ""]
    lines += base64.encodebytes(rng.randbytes(size)).decode("ascii").splitlines()
    lines.append("")
    return lines


def build_message(size: int = BODY_SIZE, seed: int = 1939) -> bytes:
    """One message of ``size`` octets at most (cut before the closing boundary)."""
    rng = random.Random(seed)
    boundary = f"=_boundary_{rng.getrandbits(48):012x}"
    # A pool of parts (about 1.5 MB), cycled through until the message is big enough.
    pool: list[list[str]] = []
    for _ in range(12):
        pool += [_prose_part(rng), _qp_part(rng), _csv_part(rng)]
        pool.append(_base64_part(rng, rng.choice((2_000, 20_000, 60_000, 150_000))))
    rng.shuffle(pool)
    encoded = [
        (f"--{boundary}\r\n" + "".join(_fit(x) + "\r\n" for x in part)).encode() for part in pool
    ]
    head = "".join(x + "\r\n" for x in _headers(rng, boundary)).encode()
    tail = f"--{boundary}--\r\n".encode()
    out = [head]
    total = len(head) + len(tail)
    i = misses = 0
    while misses < len(encoded):  # until no part of the pool fits any more
        part = encoded[i % len(encoded)]
        i += 1
        if total + len(part) > size:
            misses += 1
            continue
        misses = 0
        out.append(part)
        total += len(part)
    out.append(tail)
    message = b"".join(out)
    lengths = [len(line) for line in message[:-2].split(b"\r\n")]
    assert max(lengths) == 998, "corpus must span 0..998 octet lines"
    assert min(lengths) == 0, "corpus must span 0..998 octet lines"
    assert message.count(b"\n") == message.count(b"\r\n") == message.count(b"\r")
    return message


def retr_wire(message: bytes) -> bytes:
    """What the server sends for RETR: status line, stuffed body, terminator."""
    stuffed = b"." * (message[:1] == b".") + message.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    stuffer = DotStuffer()
    assert stuffer.encode(message) + stuffer.end() == stuffed
    return b"+OK %d octets\r\n" % len(message) + stuffed


def chunked(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# --- timing ---------------------------------------------------------------------------


def best_of(runs: int, *fns: Callable[[], float]) -> list[float]:
    """Smallest of ``runs`` durations of each of ``fns`` (which time themselves and
    return seconds). The functions take turns, run after run, so that a slow spell of
    the machine hits them all alike rather than one of them."""
    for fn in fns:
        fn()  # warm up (imports, caches, first allocations)
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], fn())
    return best


# --- ours: ClientConnection -----------------------------------------------------------


def _client_awaiting_retr() -> ClientConnection:
    """A client after greeting and USER/PASS login that has just sent RETR 1."""
    conn = ClientConnection()
    conn.receive_data(b"+OK ready\r\n")
    assert type(conn.next_event()) is Ok
    for command in (User(name="alice"), Pass(password="secret")):
        conn.send(command)
        conn.receive_data(b"+OK\r\n")
        assert type(conn.next_event()) is Ok
    assert conn.send(Retr(msg=1)) == b"RETR 1\r\n"
    return conn


def parse_ours(chunks: Sequence[bytes], expect: int, keep: list[bytes] | None = None) -> float:
    conn = _client_awaiting_retr()
    status = None
    got = 0
    ended = False
    start = time.perf_counter()
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            if type(event) is ResponseData:
                got += len(event.data)
                if keep is not None:
                    keep.append(event.data)
            elif type(event) is EndOfResponse:
                ended = True
                break
            elif type(event) is Ok and status is None:
                status = event
            else:
                raise AssertionError(f"unexpected event {event!r}")
    elapsed = time.perf_counter() - start
    assert status is not None, "no +OK"
    assert ended, "no EndOfResponse"
    assert got == expect, (got, expect)
    assert conn.next_event() is NEED_DATA
    assert not conn.pending
    return elapsed


def parse_dotreader(chunks: Sequence[bytes], expect: int) -> float:
    """The same chunks through a bare DotReader (status line stripped by hand)."""
    reader = DotReader(max_line_length=None, bare_line_endings="accept")
    buf = bytearray()
    got = 0
    ended = False
    first = True
    start = time.perf_counter()
    for chunk in chunks:
        buf += chunk
        if first:  # the +OK line is the connection's business, not the reader's
            eol = buf.find(b"\r\n")
            if eol < 0:
                continue
            del buf[: eol + 2]
            first = False
        while True:
            out = reader.read(buf)
            if out is None:
                break
            if isinstance(out, DotEnd):
                assert out.problem is None, out
                ended = True
                break
            got += len(out)
    elapsed = time.perf_counter() - start
    assert ended, "no terminator"
    assert got == expect, (got, expect)
    assert not buf
    return elapsed


# --- the reference: CPython's poplib ---------------------------------------------------


class MemoryPOP3(poplib.POP3):
    """`poplib.POP3` with the server's bytes in memory instead of a socket.

    Only ``__init__`` is replaced (the original connects and reads the greeting); the
    line handling measured, ``_getlongresp`` -> ``_getresp``/``_getline`` ->
    ``file.readline``, is poplib's own, unchanged.
    """

    # Inherited from poplib.POP3 at run time; declared here for the type checker.
    _getlongresp: Callable[[], tuple[bytes, list[bytes], int]]
    _debugging: int

    def __init__(self, wire: bytes) -> None:  # no super().__init__(): it would connect
        self.file = io.BytesIO(wire)
        self._debugging = 0


def parse_poplib(wire: bytes, keep: list[tuple[bytes, list[bytes], int]] | None = None) -> float:
    pop = MemoryPOP3(wire)
    start = time.perf_counter()
    resp = pop._getlongresp()
    elapsed = time.perf_counter() - start
    assert pop.file.read() == b"", "poplib did not read up to the terminator"
    if keep is not None:
        keep.append(resp)
    return elapsed


# --- the table ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=25, help="runs per figure (best of)")
    parser.add_argument("--size", type=int, default=BODY_SIZE, help="message octets")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args(argv)

    t_all = time.perf_counter()
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        affinity = os.cpu_count() or 0
    print(f"mailproto {mailproto.__version__} benchmarks/pop3_core.py")
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}, "
        f"{sys.platform}, {platform.machine()}); CPUs: {os.cpu_count()} "
        f"({affinity} usable); best of {args.runs}, time.perf_counter"
    )

    message = build_message(args.size)
    wire = retr_wire(message)
    chunks = chunked(wire)
    lines = message.count(b"\r\n")
    stuffed_lines = wire.count(b"\r\n..")
    print(
        f"RETR message: {len(message):,} octets, {lines:,} lines "
        f"(mean {len(message) / lines:.0f} octets), {stuffed_lines:,} dot-stuffed;\n"
        f"on the wire {len(wire):,} octets in {len(chunks)} chunks of {CHUNK // 1024} KiB"
    )

    # Untimed: both sides give back exactly the message.
    kept: list[bytes] = []
    parse_ours(chunks, len(message), kept)
    assert b"".join(kept) == message, "ClientConnection output differs from the message"
    del kept
    popped: list[tuple[bytes, list[bytes], int]] = []
    parse_poplib(wire, popped)
    resp, pop_lines, _octets = popped[0]
    assert resp == b"+OK %d octets" % len(message), resp
    assert b"\r\n".join(pop_lines) + b"\r\n" == message, "poplib output differs"
    assert len(pop_lines) == lines, (len(pop_lines), lines)
    del popped, pop_lines

    mbps = len(wire) / MB
    t_ours, t_reader, t_pop = best_of(
        args.runs,
        lambda: parse_ours(chunks, len(message)),
        lambda: parse_dotreader(chunks, len(message)),
        lambda: parse_poplib(wire),
    )
    ratio = t_pop / t_ours
    met = "met" if ratio >= TARGET_RATIO else "NOT met"

    rows = [
        ("mailproto.pop3.ClientConnection, 64 KiB chunks", mbps / t_ours, t_ours),
        ("  (DotReader alone, same chunks)", mbps / t_reader, t_reader),
        ("poplib.POP3._getlongresp, from io.BytesIO", mbps / t_pop, t_pop),
    ]
    header = ("client-side RETR parsing", "MB/s", "ms/run")
    cells = [(name, f"{rate:,.1f}", f"{secs * 1000:,.2f}") for name, rate, secs in rows]
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(3)]
    print()
    for row in [header, None, *cells]:
        if row is None:
            print("  ".join("-" * w for w in widths))
            continue
        name, *figures = row
        cells_out = [c.rjust(w) for c, w in zip(figures, widths[1:], strict=True)]
        print("  ".join([name.ljust(widths[0]), *cells_out]))
    print()
    print(f"ratio ours/poplib: {ratio:.2f}x   target: >= {TARGET_RATIO:g}x   {met}")
    print(f"total time {time.perf_counter() - t_all:.1f} s")
    return 1 if args.check and ratio < TARGET_RATIO else 0


if __name__ == "__main__":
    sys.exit(main())
