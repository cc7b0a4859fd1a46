"""Benchmark of the message core: ENVELOPE + BODYSTRUCTURE for every message of a corpus.

Run with ``python benchmarks/imap_message.py``. Everything happens in memory, in one
process, timed with `time.perf_counter` (``--clock process``: CPU time); each figure is
the best of several runs, the contenders taken in turn.

The corpus: the CPython email test messages (``test/test_email/data/msg_*.txt`` of the
running Python, when it ships them) and messages generated deterministically from
`mailcorpus` parts: plain text, multipart/mixed with prose, quoted-printable, CSV and
base64 attachments, multipart/alternative, and forwarded message/rfc822 parts.

- ours: `parse_message`, then `envelope` and `body_structure` (BODYSTRUCTURE, with
  extension data) of each message: what a server computes for
  ``FETCH 1:* (ENVELOPE BODYSTRUCTURE)``.
- stdlib: `email.message_from_bytes` (compat32 policy, the default), then a walk over
  the parts asking each for its content type: the least a stdlib-based server would do.

MB/s count message octets (1 MB = 10**6 octets). The target is to beat the stdlib walk.
"""

from __future__ import annotations

import argparse
import email
import glob
import os
import random
import sys
import time
from collections.abc import Callable, Sequence

import mailcorpus
import report
from mailproto.message import parse_message
from mailproto.message._bodystructure import body_structure
from mailproto.message._envelope import envelope

GENERATED = 400
TARGET_RATIO = 1.0  # ours / stdlib, at least


def cpython_corpus() -> list[bytes]:
    """The CPython email test messages, mbox "From " lines stripped (none if absent)."""
    try:
        import test  # type: ignore[import-not-found]  # Debian's python3 leaves it out
    except ImportError:
        return []
    folder = os.path.join(os.path.dirname(test.__file__), "test_email", "data")
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "msg_*.txt"))):
        with open(path, "rb") as f:
            data = f.read()
        if data.startswith(b"From "):
            data = data[data.find(b"\n") + 1 :]
        out.append(data)
    return out


def _lines(lines: list[str]) -> bytes:
    return "".join(mailcorpus.fit(x) + "\r\n" for x in lines).encode()


def _head(rng: random.Random, n: int, content_type: str) -> list[str]:
    names = [f"{rng.choice(mailcorpus.WORDS).title()} {rng.choice(mailcorpus.WORDS).title()}"]
    names.append("=?utf-8?q?" + rng.choice(mailcorpus.NON_ASCII).encode().hex("=") + "?=")
    return [
        f"Return-Path: <sender{n}@example.net>",
        *mailcorpus.received(
            rng, 3, relay="relay", by="mx.example.org", rcpt="user@example.org", seconds="17"
        ),
        f'From: "{rng.choice(names)}" <sender{n}@example.net>',
        "To: " + ", ".join(f"User {i} <user{i}@example.org>" for i in range(rng.randint(1, 4))),
        "Cc: team: " + ", ".join(f"m{i}@example.org" for i in range(rng.randint(0, 6))) + ";",
        f"Subject: {mailcorpus.sentence(rng)[:70]}",
        f"Date: Tue, {rng.randint(1, 28)} May 2024 10:17:42 +0200",
        f"Message-ID: <{rng.getrandbits(96):024x}@example.net>",
        f"In-Reply-To: <{rng.getrandbits(64):016x}@example.org>",
        "MIME-Version: 1.0",
        f"Content-Type: {content_type}",
    ]


def generated_message(rng: random.Random, n: int) -> bytes:
    """One message of a shape drawn from ``rng``."""
    shape = rng.randrange(4)
    if shape == 0:
        return _lines(_head(rng, n, "text/plain; charset=utf-8")[:-1] + mailcorpus.prose_part(rng))
    boundary = f"=_b{n}_{rng.getrandbits(32):08x}"
    if shape == 1:
        parts = [
            mailcorpus.prose_part(rng),
            mailcorpus.prose_part(rng, "text/html; charset=utf-8"),
        ]
        content_type = f'multipart/alternative; boundary="{boundary}"'
    else:
        parts = [mailcorpus.prose_part(rng), mailcorpus.qp_part(rng)]
        parts.append(mailcorpus.csv_part(rng, filename="export.csv"))
        parts.append(mailcorpus.base64_part(rng, rng.choice((2_000, 20_000))))
        if shape == 3:
            inner = [*_head(rng, n + 1, "text/plain; charset=utf-8"), ""]
            inner += mailcorpus.prose_part(rng)[3:]
            parts.append(["Content-Type: message/rfc822", "", *inner])
        content_type = f'multipart/mixed; boundary="{boundary}"'
    lines = [*_head(rng, n, content_type), "", "This is a multi-part message in MIME format."]
    for part in parts:
        lines += [f"--{boundary}", *part]
    lines.append(f"--{boundary}--")
    return _lines(lines)


def corpus(generated: int) -> list[bytes]:
    rng = random.Random(2045)
    return cpython_corpus() + [generated_message(rng, n) for n in range(generated)]


def ours(messages: Sequence[bytes]) -> None:
    for data in messages:
        message = parse_message(data)
        envelope(message)
        body_structure(message)


def stdlib(messages: Sequence[bytes]) -> None:
    for data in messages:
        for part in email.message_from_bytes(data).walk():
            part.get_content_type()


def timer(
    fn: Callable[[Sequence[bytes]], None], messages: Sequence[bytes], clock: str
) -> Callable[[], float]:
    now = time.process_time if clock == "process" else time.perf_counter

    def run() -> float:
        start = now()
        fn(messages)
        return now() - start

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (best of)")
    parser.add_argument("--generated", type=int, default=GENERATED, help="generated messages")
    parser.add_argument("--clock", choices=("wall", "process"), default="wall")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    report.add_json_option(parser)
    args = parser.parse_args(argv)

    messages = corpus(args.generated)
    octets = sum(len(m) for m in messages)
    mailcorpus.print_banner("imap_message.py", f"; best of {args.runs}, {args.clock} clock")
    print(
        f"corpus: {len(messages)} messages ({len(cpython_corpus())} CPython email tests, "
        f"{args.generated} generated), {octets / mailcorpus.MB:.2f} MB"
    )
    times = mailcorpus.interleaved(
        args.runs,
        {
            "ours": timer(ours, messages, args.clock),
            "stdlib": timer(stdlib, messages, args.clock),
        },
    )
    best = {name: min(values) for name, values in times.items()}
    rows = []
    labels = {
        "ours": "ours: parse_message + ENVELOPE + BODYSTRUCTURE",
        "stdlib": "stdlib: email.message_from_bytes + walk",
    }
    for name in ("ours", "stdlib"):
        seconds = best[name]
        rows.append(
            [
                labels[name],
                f"{octets / mailcorpus.MB / seconds:.1f}",
                f"{len(messages) / seconds:,.0f}",
                f"{best['stdlib'] / seconds:.2f}x",
            ]
        )
    mailcorpus.print_table(["", "MB/s", "msgs/s", "vs stdlib"], rows)
    ratio = best["stdlib"] / best["ours"]
    print(f"\ntarget: ours >= {TARGET_RATIO:.1f}x stdlib; measured {ratio:.2f}x")
    mbs = {name: octets / mailcorpus.MB / seconds for name, seconds in best.items()}
    report.write_json(
        args.json,
        "imap_message",
        "Message core: ENVELOPE + BODYSTRUCTURE of a corpus (in memory)",
        [
            report.Row(
                f"{len(messages)} messages, {octets / mailcorpus.MB:.2f} MB",
                "MB/s",
                mbs["ours"],
                "email.message_from_bytes + walk",
                mbs["stdlib"],
                target=TARGET_RATIO,
            )
        ],
        settings={"runs": args.runs, "generated": args.generated},
    )
    if args.check and ratio < TARGET_RATIO:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
