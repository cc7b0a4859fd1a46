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
import io
import poplib
import random
import sys
import time
from collections.abc import Callable, Sequence

import mailcorpus
import report
from mailcorpus import CHUNK, MB, chunked
from mailproto import NEED_DATA
from mailproto._dotdata import DotReader
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
TARGET_RATIO = 3.0  # ours / poplib

# --- a deterministic 10 MB message of plausible mail text ------------------------------


def _headers(rng: random.Random, boundary: str) -> list[str]:
    trace = mailcorpus.received(
        rng, 5, relay="relay", by="pop.example.org", rcpt="user@example.org", seconds="42"
    )
    return [
        "Return-Path: <sender@example.net>",
        *trace,
        *mailcorpus.mime_headers(
            rng,
            boundary,
            sender="sender@example.net",
            display_name="Quarterly Reports",
            date="Tue, 4 Jun 2024 10:17:42 +0200",
        ),
        "This is a multi-part message in MIME format.",
        "",
    ]


def build_message(size: int = BODY_SIZE, seed: int = 1939) -> bytes:
    """One message of ``size`` octets at most (cut before the closing boundary)."""
    rng = random.Random(seed)
    boundary = f"=_boundary_{rng.getrandbits(48):012x}"
    # A pool of parts (about 1.5 MB), cycled through until the message is big enough.
    pool: list[list[str]] = []
    for _ in range(12):
        pool += [
            mailcorpus.prose_part(rng),
            mailcorpus.qp_part(rng, word_after_dot=True),
            mailcorpus.csv_part(rng, filename="export.csv"),
        ]
        octets = rng.choice((2_000, 20_000, 60_000, 150_000))
        pool.append(mailcorpus.base64_part(rng, octets))
    rng.shuffle(pool)
    encoded = [
        (f"--{boundary}\r\n" + "".join(mailcorpus.fit(x) + "\r\n" for x in part)).encode()
        for part in pool
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
    mailcorpus.check_corpus(message)
    return message


def retr_wire(message: bytes) -> bytes:
    """What the server sends for RETR: status line, stuffed body, terminator."""
    return b"+OK %d octets\r\n" % len(message) + mailcorpus.stuff(message)


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
    return mailcorpus.time_dot_reader(reader, chunks, expect, status_line=True)


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
    report.add_json_option(parser)
    args = parser.parse_args(argv)

    t_all = time.perf_counter()
    mailcorpus.print_banner("pop3_core.py", f"; best of {args.runs}, time.perf_counter")

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
    times = mailcorpus.interleaved(
        args.runs,
        {
            "ours": lambda: parse_ours(chunks, len(message)),
            "DotReader": lambda: parse_dotreader(chunks, len(message)),
            "poplib": lambda: parse_poplib(wire),
        },
    )
    t_ours, t_reader, t_pop = (min(t) for t in times.values())
    ratio = t_pop / t_ours
    met = "met" if ratio >= TARGET_RATIO else "NOT met"

    rows = [
        ("mailproto.pop3.ClientConnection, 64 KiB chunks", mbps / t_ours, t_ours),
        ("  (DotReader alone, same chunks)", mbps / t_reader, t_reader),
        ("poplib.POP3._getlongresp, from io.BytesIO", mbps / t_pop, t_pop),
    ]
    mailcorpus.print_table(
        ("client-side RETR parsing", "MB/s", "ms/run"),
        [(name, f"{rate:,.1f}", f"{secs * 1000:,.2f}") for name, rate, secs in rows],
    )
    print()
    print(f"ratio ours/poplib: {ratio:.2f}x   target: >= {TARGET_RATIO:g}x   {met}")
    print(f"total time {time.perf_counter() - t_all:.1f} s")
    group = f"client-side RETR parsing, {len(wire) / MB:.1f} MB in 64 KiB chunks"
    report.write_json(
        args.json,
        "pop3_core",
        "POP3 core (sans-I/O, in memory)",
        [
            report.Row("ClientConnection vs poplib", "MB/s", mbps / t_ours,
                       "poplib._getlongresp", mbps / t_pop, target=TARGET_RATIO, group=group),
            report.Row("DotReader alone vs poplib", "MB/s", mbps / t_reader,
                       "poplib._getlongresp", mbps / t_pop, group=group),
        ],
        settings={"runs": args.runs, "size": args.size},
    )  # fmt: skip
    return 1 if args.check and ratio < TARGET_RATIO else 0


if __name__ == "__main__":
    sys.exit(main())
