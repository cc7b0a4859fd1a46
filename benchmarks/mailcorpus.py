"""What the benchmarks share: a deterministic corpus of plausible mail text, dot-stuffing
and chunking, interleaved timing, and the header and table of the printed report.

Imported by plain name (``import mailcorpus``) from the scripts beside it, which are run
as ``python benchmarks/<name>.py``. Every builder draws from the `random.Random` it is
given, in a fixed order, so that a seed always gives the same octets.
"""

from __future__ import annotations

import base64
import binascii
import os
import platform
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from random import Random

import mailproto
from mailproto._dotdata import DotEnd, DotReader, DotStuffer

CHUNK = 64 * 1024  # octets fed to a connection at a time
MB = 1_000_000

# --- words, sentences, lines --------------------------------------------------------

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
WORDS = _VOCABULARY.split()

NON_ASCII = ["café", "naïve", "Zürich", "façade", "déjà vu", "Größe", "señor", "résumé"]

# Lines that must be dot-stuffed on the wire: "." alone, "..", and text after a period.
DOT_LINES = [
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


def sentence(rng: Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 18))]
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), rng.choice(NON_ASCII))
    if rng.random() < 0.1:
        words.append(f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}")
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice(".....?!;")


def paragraph(rng: Random, sentences: tuple[int, int] = (2, 7)) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(*sentences)))


def fit(line: str, limit: int = 998) -> str:
    """Cut a line so that its UTF-8 form has at most ``limit`` octets."""
    raw = line.encode()
    if len(raw) <= limit:
        return line
    return raw[:limit].decode("utf-8", "ignore")


# --- header blocks --------------------------------------------------------------------


def received(rng: Random, hops: int, *, relay: str, by: str, rcpt: str, seconds: str) -> list[str]:
    """``hops`` Received: fields, from ``mx<hop>.<relay>.example.net`` to host ``by``."""
    lines = []
    for hop in range(hops):
        lines += [
            f"Received: from mx{hop}.{relay}.example.net (mx{hop}.{relay}.example.net "
            f"[192.0.2.{rng.randint(1, 254)}])",
            f"\tby {by} (mailproto) with ESMTPS id {rng.getrandbits(64):016X}",
            f"\tfor <{rcpt}>; Tue, 4 Jun 2024 {hop:02d}:17:{seconds} +0000",
        ]
    return lines


def mime_headers(
    rng: Random, boundary: str, *, sender: str, display_name: str | None, date: str
) -> list[str]:
    """DKIM-Signature to Content-Type (multipart/mixed), then the empty line. With no
    ``display_name``, the sender's name is two random words."""
    lines = [
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=2024;",
        "\th=from:to:cc:subject:date:message-id:mime-version:content-type;",
        f"\tbh={base64.b64encode(rng.randbytes(32)).decode()};",
        *textwrap.wrap(
            "b=" + base64.b64encode(rng.randbytes(256)).decode(),
            76,
            initial_indent="\t",
            subsequent_indent="\t ",
        ),
    ]
    if display_name is None:
        display_name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()}"
    lines += [
        f"From: {display_name} <{sender}>",
        "To: " + ", ".join(f"<user{i}@example.org>" for i in range(3)),
        *textwrap.wrap(
            "Cc: " + ", ".join(f"team-{rng.choice(WORDS)}@example.org" for _ in range(12)),
            76,
            subsequent_indent=" ",
        ),
        f"Subject: Re: {sentence(rng)[:60]}",
        f"Date: {date}",
        f"Message-ID: <{rng.getrandbits(96):024x}@example.net>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "",
    ]
    return lines


# --- MIME parts (header lines, empty line, content lines, empty line) -----------------


def prose_part(rng: Random, content_type: str = "text/plain; charset=utf-8") -> list[str]:
    lines = [f"Content-Type: {content_type}", "Content-Transfer-Encoding: 8bit", ""]
    for _ in range(rng.randint(25, 45)):
        roll = rng.random()
        if roll < 0.12:
            lines.append(rng.choice(DOT_LINES))
        elif roll < 0.25:
            lines += ["> " + x for x in textwrap.wrap(paragraph(rng), rng.randint(50, 74))]
        elif roll < 0.32:
            # One unwrapped paragraph, as many clients send them: up to 998 octets.
            lines.append(fit(paragraph(rng, (6, 14))))
        else:
            wrapped = textwrap.wrap(paragraph(rng), rng.randint(60, 78))
            if rng.random() < 0.2:
                # A wrap that happens to put a period at the start of a line.
                wrapped.append("." + rng.choice(WORDS))
            lines += wrapped
        lines.append("")
    lines += ["-- ", "Regards,", rng.choice(WORDS).title(), ""]
    return lines


def qp_part(rng: Random, *, word_after_dot: bool = False) -> list[str]:
    """Quoted-printable HTML; now and then a line that starts with a period (only "."
    unless ``word_after_dot``): quoted-printable leaves a leading period alone."""
    html = ["<html><body>"]
    for _ in range(rng.randint(15, 30)):
        html.append(f'<p style="margin:0 0 1em 0">{paragraph(rng)}</p>')
        if rng.random() < 0.2:
            html.append(("." + rng.choice(WORDS)) if word_after_dot else ".")
    html.append("</body></html>")
    qp = binascii.b2a_qp("\n".join(html).encode(), istext=True).decode("ascii")
    lines = ["Content-Type: text/html; charset=utf-8"]
    lines += ["Content-Transfer-Encoding: quoted-printable", ""]
    lines += qp.split("\n")
    lines.append("")
    return lines


def csv_part(rng: Random, filename: str | None = None) -> list[str]:
    """A text attachment (a CSV export) with lines of every length from 0 to 998."""
    lines = ["Content-Type: text/csv; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    if filename is not None:
        lines.append(f'Content-Disposition: attachment; filename="{filename}"')
    lines.append("")
    for i in range(rng.randint(40, 80)):
        target = rng.choice((0, 998, rng.randint(0, 998), rng.randint(0, 200)))
        fields: list[str] = []
        while sum(len(f) + 1 for f in fields) < target:
            fields.append(rng.choice(WORDS) if i % 3 else str(rng.getrandbits(32)))
        line = ",".join(fields)[:target]
        lines.append(("." + line[1:]) if line and rng.random() < 0.05 else line)
    lines.append("")
    return lines


def base64_part(rng: Random, size: int, kind: tuple[str, str] | None = None) -> list[str]:
    """``size`` random octets as a base64 attachment of ``kind`` (media type, file name
    extension); with no ``kind``, a PDF or a JPEG at random."""
    if kind is None:
        kind = rng.choice((("application/pdf", "pdf"), ("image/jpeg", "jpg")))
    media_type, ext = kind
    name = f"{rng.choice(WORDS)}-{rng.randint(1, 99)}.{ext}"
    lines = [f'Content-Type: {media_type}; name="{name}"', "Content-Transfer-Encoding: base64"]
    lines += [f'Content-Disposition: attachment; filename="{name}"', ""]
    lines += base64.encodebytes(rng.randbytes(size)).decode("ascii").splitlines()
    lines.append("")
    return lines


def check_corpus(text: bytes) -> None:
    """``text`` (CRLF lines, the last one ended) has lines of 0 and 998 octets, and no
    CR or LF outside a CRLF."""
    lengths = [len(line) for line in text[:-2].split(b"\r\n")]
    assert max(lengths) == 998, "corpus must span 0..998 octet lines"
    assert min(lengths) == 0, "corpus must span 0..998 octet lines"
    assert text.count(b"\n") == text.count(b"\r\n") == text.count(b"\r")


# --- the wire -------------------------------------------------------------------------


def stuff(body: bytes) -> bytes:
    """The dot-stuffed wire form of ``body`` (whole lines), terminator included."""
    wire = (b"." if body[:1] == b"." else b"") + body.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    stuffer = DotStuffer()
    assert stuffer.encode(body) + stuffer.end() == wire
    return wire


def chunked(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def time_dot_reader(
    reader: DotReader,
    chunks: Sequence[bytes],
    expect: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
    status_line: bool = False,
) -> float:
    """Seconds ``reader`` takes over ``chunks`` (dot-stuffed data up to its terminator,
    after a status line to drop first if ``status_line``), checking that it gives
    ``expect`` octets and leaves nothing over."""
    buf = bytearray()
    got = 0
    ended = False
    start = clock()
    for chunk in chunks:
        buf += chunk
        if status_line:  # the +OK line is the connection's business, not the reader's
            eol = buf.find(b"\r\n")
            if eol < 0:
                continue
            del buf[: eol + 2]
            status_line = False
        while True:
            out = reader.read(buf)
            if out is None:
                break
            if isinstance(out, DotEnd):
                assert out.problem is None, out
                ended = True
                break
            got += len(out)
    elapsed = clock() - start
    assert ended, "no terminator"
    assert got == expect, (got, expect)
    assert not buf
    return elapsed


# --- timing and report ----------------------------------------------------------------


def interleaved(rounds: int, fns: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Durations of ``rounds`` runs of each function, taken in turn (a, b, a, b...).

    Each function times itself and returns seconds. Taking them in turn spreads any load
    from other processes over all of them alike, which keeps their ratios honest.
    """
    for fn in fns.values():
        fn()  # warm up (imports, caches, first allocations)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(fn())
    return times


def print_banner(script: str, details: str) -> None:
    """The first two lines of a report: versions, then the machine and ``details``."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        affinity = os.cpu_count() or 0
    print(f"mailproto {mailproto.__version__} benchmarks/{script}")
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}, "
        f"{sys.platform}, {platform.machine()}); CPUs: {os.cpu_count()} "
        f"({affinity} usable){details}"
    )


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """An empty line, then ``header``, a rule and ``rows``: the first column left-aligned,
    the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, None, *rows]:
        if row is None:
            print("  ".join("-" * w for w in widths))
            continue
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells).rstrip())
