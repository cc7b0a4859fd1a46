"""Benchmarks of the SMTP core: DATA ingest and pipelined transactions.

Run with ``python benchmarks/smtp_core.py`` (or ``make bench``). Everything happens in
memory, in one process, with `time.perf_counter` (``--clock process``: CPU time, for a
busy machine); each figure is the best of several runs. Two measurements:

1. Server-side ingest of a 10 MB DATA body of realistic mail text (prose, quoted-printable
   and base64 parts, lines of 0..998 octets, lines starting with "."), dot-stuffed once up
   front and fed to `ServerConnection` in 64 KiB chunks after a scripted EHLO, MAIL, RCPT,
   DATA. Beside it: the `DotReader` alone on the same chunks (framing without the
   connection), one ``bytes.replace(b"\\r\\n..", b"\\r\\n.")`` over the same bytes (the
   practical limit of unstuffing in Python), and aiosmtpd fed the same chunks (a peer).
   MB/s count wire octets (the stuffed body with its terminator), 1 MB = 10**6 octets.
2. Pipelined transactions per second: MAIL, 10 RCPT and DATA in one write, a 4 KB body,
   end of data; replies 250/354/250. Once through our `ClientConnection` and
   `ServerConnection` in memory (the whole pair), then the server side alone fed the
   same wire bytes, beside aiosmtpd fed those bytes.

aiosmtpd is driven in memory too: its protocol object gets the bytes through
``data_received`` from a transport stub, on an asyncio loop, with its flow control
honoured. Its figures include the asyncio scheduling its design relies on.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import os
import platform
import random
import statistics
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any

import mailproto
from mailproto import NEED_DATA
from mailproto._dotdata import DotEnd, DotReader, DotStuffer
from mailproto.smtp import (
    ClientConnection,
    Data,
    Ehlo,
    EndOfMessage,
    MailFrom,
    MessageData,
    RcptTo,
    Reply,
    ServerConfig,
    ServerConnection,
)

BODY_SIZE = 10_000_000  # octets of unstuffed body
CHUNK = 64 * 1024
SMALL_BODY = 4096
RECIPIENTS = 10
TARGET_RATIO = 0.5
MB = 1_000_000

# --- a deterministic corpus of plausible mail text ------------------------------------

_WORDS_TEXT = """
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
_WORDS = _WORDS_TEXT.split()

_NON_ASCII = ["café", "naïve", "Zürich", "façade", "déjà vu", "Größe", "señor", "résumé"]

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


def _headers(rng: random.Random, n: int, boundary: str) -> list[str]:
    lines = []
    for hop in range(rng.randint(3, 6)):
        lines += [
            f"Received: from mx{hop}.relay{n}.example.net (mx{hop}.relay{n}.example.net "
            f"[192.0.2.{rng.randint(1, 254)}])",
            f"\tby mail.example.org (mailproto) with ESMTPS id {rng.getrandbits(64):016X}",
            f"\tfor <user{n}@example.org>; Tue, 4 Jun 2024 {hop:02d}:17:{n % 60:02d} +0000",
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
        f"From: {rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()} <sender{n}@example.net>",
        "To: " + ", ".join(f"<user{i}@example.org>" for i in range(3)),
        *textwrap.wrap(
            "Cc: " + ", ".join(f"team-{rng.choice(_WORDS)}@example.org" for _ in range(12)),
            76,
            subsequent_indent=" ",
        ),
        f"Subject: Re: {_sentence(rng)[:60]}",
        f"Date: Tue, 4 Jun 2024 10:{n % 60:02d}:00 +0200",
        f"Message-ID: <{rng.getrandbits(96):024x}@example.net>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "",
    ]
    return lines


def _prose_part(rng: random.Random) -> list[str]:
    lines = ["Content-Type: text/plain; charset=utf-8; format=flowed"]
    lines += ["Content-Transfer-Encoding: 8bit", ""]
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
    lines += ["-- ", "Regards,", f"{rng.choice(_WORDS).title()}", ""]
    return lines


def _qp_part(rng: random.Random) -> list[str]:
    html = ["<html><body>"]
    for _ in range(rng.randint(15, 30)):
        html.append(f'<p style="margin:0 0 1em 0">{_paragraph(rng)}</p>')
        if rng.random() < 0.2:
            html.append(".")  # quoted-printable leaves a leading period alone
    html.append("</body></html>")
    qp = binascii.b2a_qp("\n".join(html).encode(), istext=True).decode("ascii")
    lines = ["Content-Type: text/html; charset=utf-8"]
    lines += ["Content-Transfer-Encoding: quoted-printable", ""]
    lines += qp.split("\n")
    lines.append("")
    return lines


def _base64_part(rng: random.Random, size: int) -> list[str]:
    name = f"{rng.choice(_WORDS)}-{rng.randint(1, 99)}.pdf"
    lines = [f'Content-Type: application/pdf; name="{name}"']
    lines += ["Content-Transfer-Encoding: base64"]
    lines += [f'Content-Disposition: attachment; filename="{name}"', ""]
    lines += base64.encodebytes(rng.randbytes(size)).decode("ascii").splitlines()
    lines.append("")
    return lines


def _long_lines_part(rng: random.Random) -> list[str]:
    """A text attachment (a CSV export) with lines of every length from 0 to 998."""
    lines = ["Content-Type: text/csv; charset=utf-8", "Content-Transfer-Encoding: 8bit", ""]
    for i in range(rng.randint(40, 80)):
        target = rng.choice((0, 998, rng.randint(0, 998), rng.randint(0, 200)))
        fields: list[str] = []
        while sum(len(f) + 1 for f in fields) < target:
            fields.append(rng.choice(_WORDS) if i % 3 else str(rng.getrandbits(32)))
        line = ",".join(fields)[:target]
        lines.append(("." + line[1:]) if line and rng.random() < 0.05 else line)
    lines.append("")
    return lines


def build_unit(seed: int, parts: int = 6) -> bytes:
    """A few hundred KB of messages: headers, prose, QP HTML, CSV and base64 parts."""
    rng = random.Random(seed)
    lines: list[str] = []
    for n in range(parts):
        boundary = f"=_boundary_{rng.getrandbits(48):012x}"
        lines += _headers(rng, n, boundary)
        sections = [_prose_part(rng), _qp_part(rng), _long_lines_part(rng)]
        sections.append(_base64_part(rng, rng.randint(20_000, 60_000)))
        rng.shuffle(sections)
        for section in sections:
            lines.append(f"--{boundary}")
            lines += section
        lines += [f"--{boundary}--", ""]
    return "".join(_fit(line) + "\r\n" for line in lines).encode()


def build_body(size: int = BODY_SIZE) -> bytes:
    """``size`` octets (cut at a line end) of the unit, repeated; ends with CRLF."""
    unit = build_unit(2024)
    body = unit * (size // len(unit) + 1)
    body = body[: body.rfind(b"\r\n", 0, size) + 2]
    lengths = [len(line) for line in body[:-2].split(b"\r\n")]
    assert max(lengths) == 998, "corpus must span 0..998"
    assert min(lengths) == 0, "corpus must span 0..998"
    assert body.count(b"\n") == body.count(b"\r\n") == body.count(b"\r")
    return body


def stuff(body: bytes) -> bytes:
    """The dot-stuffed wire form of ``body`` (whole lines), terminator included."""
    wire = (b"." if body[:1] == b"." else b"") + body.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    stuffer = DotStuffer()
    assert stuffer.encode(body) + stuffer.end() == wire
    return wire


def chunked(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# --- timing ---------------------------------------------------------------------------

# The clock of every measurement: wall time by default. ``--clock process`` counts this
# process's CPU time only, which a machine busy with other work disturbs less (the time
# we are descheduled is left out); aiosmtpd runs in this thread too, so it is fair to it.
clock: Callable[[], float] = time.perf_counter


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


# --- 1. DATA ingest -------------------------------------------------------------------

R220 = Reply(code=220, lines=("mx.example.org ESMTP mailproto",))
R_EHLO = Reply(code=250, lines=("mx.example.org", "PIPELINING", "8BITMIME", "SIZE 64000000"))
R250 = Reply(code=250, enhanced="2.0.0", lines=("OK",))
R354 = Reply(code=354, lines=("End data with <CR><LF>.<CR><LF>",))


def _server_in_data(config: ServerConfig) -> ServerConnection:
    """A server connection that has just answered DATA with 354."""
    conn = ServerConnection(config)
    conn.send(R220)
    conn.receive_data(b"EHLO client.example.net\r\nMAIL FROM:<a@example.net>\r\n")
    conn.receive_data(b"RCPT TO:<b@example.org>\r\nDATA\r\n")
    for reply in (R_EHLO, R250, R250, R354):
        conn.next_event()
        conn.send(reply)
    return conn


def ingest_server(
    chunks: Sequence[bytes], expect: int, config: ServerConfig, keep: list[bytes] | None = None
) -> float:
    conn = _server_in_data(config)
    got = 0
    ended = False
    start = clock()
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            if type(event) is MessageData:
                got += len(event.data)
                if keep is not None:
                    keep.append(event.data)
            elif type(event) is EndOfMessage:
                conn.send(R250)
                ended = True
                break
            else:
                raise AssertionError(f"unexpected event {event!r}")
    elapsed = clock() - start
    assert ended, "no EndOfMessage"
    assert got == expect, (got, expect)
    return elapsed


def ingest_dotreader(chunks: Sequence[bytes], expect: int, config: ServerConfig) -> float:
    reader = DotReader(
        max_line_length=config.max_text_line,
        max_size=config.max_message_size,
        bare_line_endings=config.bare_line_endings,
    )
    buf = bytearray()
    got = 0
    ended = False
    start = clock()
    for chunk in chunks:
        buf += chunk
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
    assert ended, "no DotEnd"
    assert got == expect, (got, expect)
    assert not buf
    return elapsed


def replace_limit(wire: bytes) -> float:
    start = clock()
    wire.replace(b"\r\n..", b"\r\n.")
    return clock() - start


# --- 2. pipelined transactions ---------------------------------------------------------

SENDER = "sender@example.net"
RCPTS = [f"user{i}@example.org" for i in range(RECIPIENTS)]


def _pair() -> tuple[ClientConnection, ServerConnection]:
    client, server = ClientConnection(), ServerConnection()
    client.receive_data(server.send(R220))
    client.next_event()
    server.receive_data(client.send(Ehlo(domain="client.example.net")))
    server.next_event()
    client.receive_data(server.send(R_EHLO))
    client.next_event()
    return client, server


def pipelined_pair(txns: int, body: bytes) -> float:
    client, server = _pair()
    start = clock()
    for _ in range(txns):
        # The client builds its commands (events validated, formatted) and pipelines them.
        wire = client.send(MailFrom(sender=SENDER))
        for rcpt in RCPTS:
            wire += client.send(RcptTo(recipient=rcpt))
        server.receive_data(wire + client.send(Data()))
        replies = b""
        while (event := server.next_event()) is not NEED_DATA:
            replies += server.send(R354 if type(event) is Data else R250)
        client.receive_data(replies)
        n = 0
        while (reply := client.next_event()) is not NEED_DATA:
            assert type(reply) is Reply, reply
            assert reply.code < 400, reply
            n += 1
        assert n == RECIPIENTS + 2, n
        server.receive_data(client.send(MessageData(body)) + client.send(EndOfMessage()))
        got = 0
        while type(event := server.next_event()) is MessageData:
            got += len(event.data)
        assert type(event) is EndOfMessage, event
        assert got == len(body), got
        client.receive_data(server.send(R250))
        reply = client.next_event()
        assert type(reply) is Reply, reply
        assert reply.code == 250, reply
    return clock() - start


def transaction_wire(body: bytes) -> tuple[bytes, bytes]:
    """What a pipelining client writes: the command group, then the stuffed body + end."""
    client, _ = _pair()
    commands = client.send(MailFrom(sender=SENDER))
    for rcpt in RCPTS:
        commands += client.send(RcptTo(recipient=rcpt))
    commands += client.send(Data())
    return commands, stuff(body)


def pipelined_server(txns: int, commands: bytes, data: bytes) -> float:
    server = _server_after_ehlo()
    start = clock()
    for _ in range(txns):
        server.receive_data(commands)
        n = 0
        while (event := server.next_event()) is not NEED_DATA:
            server.send(R354 if type(event) is Data else R250)
            n += 1
        assert n == RECIPIENTS + 2, n
        server.receive_data(data)
        while type(event := server.next_event()) is MessageData:
            pass
        assert type(event) is EndOfMessage, event
        server.send(R250)
    return clock() - start


def _server_after_ehlo() -> ServerConnection:
    server = ServerConnection()
    server.send(R220)
    server.receive_data(b"EHLO client.example.net\r\n")
    server.next_event()
    server.send(R_EHLO)
    return server


# --- the peer: aiosmtpd, in memory ---------------------------------------------------


class _Transport(asyncio.Transport):
    """Collects what aiosmtpd writes; counts final reply lines; honours pause_reading."""

    def __init__(self) -> None:
        super().__init__()
        self.replies = 0
        self._want = 0
        self._waiter: asyncio.Future[None] | None = None
        self.can_read = asyncio.Event()
        self.can_read.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.1", 40000) if name == "peername" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.replies += sum(1 for line in bytes(data).split(b"\r\n") if line[3:4] == b" ")
        waiter = self._waiter
        if waiter is not None and self.replies >= self._want and not waiter.done():
            waiter.set_result(None)

    async def until(self, replies: int) -> None:
        if self.replies < replies:
            self._want = replies
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        self.can_read.clear()

    def resume_reading(self) -> None:
        self.can_read.set()


class _Handler:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 2.0.0 OK"


class AioSMTPDPeer:
    """aiosmtpd's SMTP protocol object on a private loop, fed from memory."""

    def __init__(self) -> None:
        from aiosmtpd.smtp import SMTP

        self._smtp_class = SMTP
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    def run(self, job: Callable[[Any, _Transport], Any]) -> float:
        async def main() -> float:
            proto = self._smtp_class(
                _Handler(), hostname="mx.example.org", data_size_limit=64_000_000
            )
            transport = _Transport()
            proto.connection_made(transport)
            await transport.until(1)  # the greeting
            try:
                elapsed: float = await job(proto, transport)
            finally:
                proto.connection_lost(None)
                await asyncio.sleep(0)
            return elapsed

        return self.loop.run_until_complete(main())

    @staticmethod
    async def _feed(proto: Any, transport: _Transport, chunks: Sequence[bytes]) -> None:
        for chunk in chunks:
            await transport.can_read.wait()
            proto.data_received(chunk)

    def ingest(self, chunks: Sequence[bytes]) -> float:
        async def job(proto: Any, transport: _Transport) -> float:
            proto.data_received(b"EHLO client.example.net\r\nMAIL FROM:<a@example.net>\r\n")
            proto.data_received(b"RCPT TO:<b@example.org>\r\nDATA\r\n")
            await transport.until(5)
            start = clock()
            await self._feed(proto, transport, chunks)
            await transport.until(6)
            return clock() - start

        return self.run(job)

    def pipelined(self, txns: int, commands: bytes, data: bytes) -> float:
        per_group = RECIPIENTS + 2

        async def job(proto: Any, transport: _Transport) -> float:
            proto.data_received(b"EHLO client.example.net\r\n")
            await transport.until(2)
            done = transport.replies
            body_chunks = chunked(data)
            start = clock()
            for _ in range(txns):
                proto.data_received(commands)
                done += per_group
                await transport.until(done)
                await self._feed(proto, transport, body_chunks)
                done += 1
                await transport.until(done)
            return clock() - start

        return self.run(job)


# --- the table ------------------------------------------------------------------------


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}{unit}" if value >= 100 else f"{value:,.1f}{unit}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return ", " + line.partition(":")[2].strip()
    except OSError:
        pass
    return ""


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per ingest figure")
    parser.add_argument("--txns", type=int, default=2000, help="transactions per run")
    parser.add_argument("--txn-runs", type=int, default=5, help="runs per transaction figure")
    parser.add_argument("--peer-txns", type=int, default=500, help="aiosmtpd transactions")
    parser.add_argument("--no-peer", action="store_true", help="skip aiosmtpd")
    parser.add_argument(
        "--clock", choices=["wall", "process"], default="wall", help="perf_counter or CPU time"
    )
    args = parser.parse_args(argv)
    global clock
    clock = time.process_time if args.clock == "process" else time.perf_counter

    t_all = time.perf_counter()
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        affinity = os.cpu_count() or 0
    print(f"mailproto {mailproto.__version__} benchmarks/smtp_core.py")
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}, "
        f"{sys.platform}, {platform.machine()}); CPUs: {os.cpu_count()} "
        f"({affinity} usable){_cpu_model()}; load average {_load()}"
    )
    clock_name = "time.process_time (CPU)" if args.clock == "process" else "time.perf_counter"
    print(f"Clock: {clock_name}")

    body = build_body()
    wire = stuff(body)
    chunks = chunked(wire)
    config = ServerConfig(max_message_size=64_000_000)
    lines = body.count(b"\r\n")
    stuffed_lines = wire.count(b"\r\n..") + (wire[:2] == b"..")
    print(
        f"DATA body: {len(body):,} octets, {lines:,} lines, "
        f"{stuffed_lines:,} dot-stuffed; on the wire {len(wire):,} octets "
        f"in {len(chunks)} chunks of {CHUNK // 1024} KiB"
    )

    # Check once, untimed, that the server gives back exactly the body.
    kept: list[bytes] = []
    ingest_server(chunks, len(body), config, kept)
    assert b"".join(kept) == body
    del kept

    mbps = len(wire) / MB
    ingest = interleaved(
        args.runs,
        {
            "ServerConnection": lambda: ingest_server(chunks, len(body), config),
            "DotReader": lambda: ingest_dotreader(chunks, len(body), config),
            "replace": lambda: min(replace_limit(wire) for _ in range(3)),
        },
    )
    ours, reader, limit = (mbps / min(t) for t in ingest.values())

    small = body[: body.rfind(b"\r\n", 0, SMALL_BODY) + 2]
    commands, data = transaction_wire(small)
    print(
        f"Transaction: {len(commands)} octets of commands in one write, "
        f"a {len(small):,}-octet body ({len(data):,} on the wire)"
    )
    txns = args.txns
    pipelined = interleaved(
        args.txn_runs,
        {
            "pair": lambda: pipelined_pair(txns, small),
            "server": lambda: pipelined_server(txns, commands, data),
        },
    )
    pair, server = (txns / min(t) for t in pipelined.values())

    peer_ingest = peer_txn = None
    peer_note = "skipped"
    if not args.no_peer:
        try:
            peer = AioSMTPDPeer()
        except ImportError:
            peer_note = "aiosmtpd not installed"
        else:
            try:
                n = args.peer_txns
                peer_times = interleaved(
                    3,
                    {
                        "ingest": lambda: peer.ingest(chunks),
                        "pipelined": lambda: peer.pipelined(n, commands, data),
                    },
                )
                peer_ingest = mbps / min(peer_times["ingest"])
                peer_txn = n / min(peer_times["pipelined"])
            finally:
                peer.close()
            import aiosmtpd

            peer_note = f"aiosmtpd {aiosmtpd.__version__}"

    def ratio(a: float, b: float | None) -> str:
        return "-" if b is None else f"{a / b:.3g}"

    met = "met" if ours / limit >= TARGET_RATIO else "NOT MET"
    rows = [
        ("1. DATA ingest, 10 MB in 64 KiB chunks (MB/s)", "", "", "", ""),
        (
            "   ServerConnection vs one bytes.replace",
            _num(ours),
            _num(limit) + " (replace)",
            ratio(ours, limit),
            f">= {TARGET_RATIO} {met}",
        ),
        (
            "   DotReader alone vs one bytes.replace",
            _num(reader),
            _num(limit) + " (replace)",
            ratio(reader, limit),
            "-",
        ),
        (
            "   ServerConnection vs peer",
            _num(ours),
            _num(peer_ingest) + f" ({peer_note})",
            ratio(ours, peer_ingest),
            "-",
        ),
        (f"2. Pipelined transactions/s (MAIL, {RECIPIENTS} RCPT, DATA, 4 KB)", "", "", "", ""),
        ("   ClientConnection + ServerConnection pair", _num(pair), "-", "-", "-"),
        (
            "   ServerConnection alone vs peer",
            _num(server),
            _num(peer_txn) + f" ({peer_note})",
            ratio(server, peer_txn),
            "-",
        ),
    ]
    header = ("measurement", "ours", "peer/limit", "ratio", "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    print()
    for row in [header, None, *rows]:
        if row is None:
            print("  ".join("-" * w for w in widths))
            continue
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells).rstrip())
    spread = ", ".join(
        f"{name} {statistics.median(t) / min(t):.2f}"
        for name, t in [*ingest.items(), *pipelined.items()]
    )
    print(
        f"\nBest of {args.runs} interleaved ingest rounds (replace: best of 3 per round), "
        f"best of {args.txn_runs} x {txns:,} transactions (aiosmtpd: 3 x {args.peer_txns:,})."
        f"\nNoise, median/best: {spread}. Total {time.perf_counter() - t_all:.1f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
