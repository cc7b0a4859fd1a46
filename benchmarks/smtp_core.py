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
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import mailcorpus
import report
from mailcorpus import CHUNK, MB, chunked, interleaved, stuff
from mailproto import NEED_DATA
from mailproto._dotdata import DotReader
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
SMALL_BODY = 4096
RECIPIENTS = 10
TARGET_RATIO = 0.5

# --- a deterministic corpus of plausible mail text ------------------------------------


def _headers(rng: random.Random, n: int, boundary: str) -> list[str]:
    trace = mailcorpus.received(
        rng,
        rng.randint(3, 6),
        relay=f"relay{n}",
        by="mail.example.org",
        rcpt=f"user{n}@example.org",
        seconds=f"{n % 60:02d}",
    )
    return trace + mailcorpus.mime_headers(
        rng,
        boundary,
        sender=f"sender{n}@example.net",
        display_name=None,
        date=f"Tue, 4 Jun 2024 10:{n % 60:02d}:00 +0200",
    )


def build_unit(seed: int, parts: int = 6) -> bytes:
    """A few hundred KB of messages: headers, prose, QP HTML, CSV and base64 parts."""
    rng = random.Random(seed)
    lines: list[str] = []
    for n in range(parts):
        boundary = f"=_boundary_{rng.getrandbits(48):012x}"
        lines += _headers(rng, n, boundary)
        sections = [
            mailcorpus.prose_part(rng, "text/plain; charset=utf-8; format=flowed"),
            mailcorpus.qp_part(rng),
            mailcorpus.csv_part(rng),
        ]
        octets = rng.randint(20_000, 60_000)
        sections.append(mailcorpus.base64_part(rng, octets, ("application/pdf", "pdf")))
        rng.shuffle(sections)
        for section in sections:
            lines.append(f"--{boundary}")
            lines += section
        lines += [f"--{boundary}--", ""]
    return "".join(mailcorpus.fit(line) + "\r\n" for line in lines).encode()


def build_body(size: int = BODY_SIZE) -> bytes:
    """``size`` octets (cut at a line end) of the unit, repeated; ends with CRLF."""
    unit = build_unit(2024)
    body = unit * (size // len(unit) + 1)
    body = body[: body.rfind(b"\r\n", 0, size) + 2]
    mailcorpus.check_corpus(body)
    return body


# --- timing ---------------------------------------------------------------------------

# The clock of every measurement: wall time by default. ``--clock process`` counts this
# process's CPU time only, which a machine busy with other work disturbs less (the time
# we are descheduled is left out); aiosmtpd runs in this thread too, so it is fair to it.
clock: Callable[[], float] = time.perf_counter


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
    return mailcorpus.time_dot_reader(reader, chunks, expect, clock=clock)


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
    report.add_json_option(parser)
    args = parser.parse_args(argv)
    global clock
    clock = time.process_time if args.clock == "process" else time.perf_counter

    t_all = time.perf_counter()
    mailcorpus.print_banner("smtp_core.py", f"{_cpu_model()}; load average {_load()}")
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
    mailcorpus.print_table(("measurement", "ours", "peer/limit", "ratio", "target"), rows)
    spread = ", ".join(
        f"{name} {statistics.median(t) / min(t):.2f}"
        for name, t in [*ingest.items(), *pipelined.items()]
    )
    print(
        f"\nBest of {args.runs} interleaved ingest rounds (replace: best of 3 per round), "
        f"best of {args.txn_runs} x {txns:,} transactions (aiosmtpd: 3 x {args.peer_txns:,})."
        f"\nNoise, median/best: {spread}. Total {time.perf_counter() - t_all:.1f} s."
    )
    peer_name = peer_note if peer_ingest is not None else None
    ingest_group = "DATA ingest, 10 MB in 64 KiB chunks"
    txn_group = f"Pipelined transactions (MAIL, {RECIPIENTS} RCPT, DATA, 4 KB)"
    report.write_json(
        args.json,
        "smtp_core",
        "SMTP core (sans-I/O, in memory)",
        [
            report.Row("ServerConnection vs one bytes.replace", "MB/s", ours,
                       "bytes.replace (limit)", limit, target=TARGET_RATIO, group=ingest_group),
            report.Row("DotReader alone vs one bytes.replace", "MB/s", reader,
                       "bytes.replace (limit)", limit, group=ingest_group),
            report.Row("ServerConnection vs aiosmtpd", "MB/s", ours, peer_name, peer_ingest,
                       group=ingest_group),
            report.Row("ClientConnection + ServerConnection pair", "txn/s", pair,
                       group=txn_group),
            report.Row("ServerConnection alone vs aiosmtpd", "txn/s", server, peer_name,
                       peer_txn, group=txn_group),
        ],
        notes=[f"peer: {peer_note}", f"clock: {clock_name}"],
        settings={"runs": args.runs, "txns": txns, "peer_txns": args.peer_txns},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
