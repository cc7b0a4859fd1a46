"""Client libraries against real servers: ours (blocking, asyncio, anyio) and the usual peers.

Run with ``python benchmarks/clients.py`` (or ``make bench``); needs Postfix's
``smtp-sink`` (``/usr/sbin/smtp-sink``), run privately on 127.0.0.1 and an ephemeral
port (as root it is started with ``-u nobody``).

SMTP: messages per second sending 2,000 messages of 1 KB to smtp-sink over one
connection, and over 20 concurrent connections (100 messages each), with our
`SMTPClient` (threads for the concurrent row), `AsyncSMTPClient` on asyncio and on anyio
(tasks), and `smtplib` (threads). aiosmtplib is measured when it is installed. Each row
is the best of three runs, wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from mailproto_adapters import anyio as anyio_flavour
from mailproto_adapters import asyncio as asyncio_flavour
from mailproto_adapters import blocking

MESSAGE = (
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: benchmark\r\n\r\n"
    + b"".join(b"line %03d of a small benchmark message, padded to 64 octets.....\r\n" % i
               for i in range(15))
)  # fmt: skip
SENDER, RECIPIENTS = "a@example.com", ["b@example.com"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_sink() -> Iterator[int]:
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not os.path.exists(binary):
        raise SystemExit("smtp-sink not found (Debian package postfix)")
    port = free_port()
    args = [binary]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    proc = subprocess.Popen(
        [*args, f"127.0.0.1:{port}", "256"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


# --- one sender of n messages, per library -----------------------------------------------


def ours_blocking(port: int, n: int) -> None:
    with blocking.SMTPClient("127.0.0.1", port, starttls=False) as smtp:
        for _ in range(n):
            smtp.send_message(MESSAGE, sender=SENDER, recipients=RECIPIENTS)


async def ours_async(module: Any, port: int, n: int) -> None:
    async with module.AsyncSMTPClient("127.0.0.1", port, starttls=False) as smtp:
        for _ in range(n):
            await smtp.send_message(MESSAGE, sender=SENDER, recipients=RECIPIENTS)


def peer_smtplib(port: int, n: int) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for _ in range(n):
            smtp.sendmail(SENDER, RECIPIENTS, MESSAGE)


async def peer_aiosmtplib(port: int, n: int) -> None:
    import aiosmtplib  # type: ignore[import-not-found]

    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await smtp.connect()
    for _ in range(n):
        await smtp.sendmail(SENDER, RECIPIENTS, MESSAGE)
    await smtp.quit()


def threads(fn: Callable[[int, int], None], port: int, n: int, conns: int) -> None:
    workers = [threading.Thread(target=fn, args=(port, n // conns)) for _ in range(conns)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def tasks(fn: Callable[[int, int], Any], port: int, n: int, conns: int, backend: str) -> None:
    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(conns):
                tg.start_soon(fn, port, n // conns)

    anyio.run(main, backend=backend)


def rows(port: int, n: int, conns: int) -> list[tuple[str, Callable[[], None]]]:
    def asyncio_fn(p: int, k: int) -> Awaitable[None]:
        return ours_async(asyncio_flavour, p, k)

    def anyio_fn(p: int, k: int) -> Awaitable[None]:
        return ours_async(anyio_flavour, p, k)

    def on(backend: str, fn: Callable[[int, int], Any]) -> Callable[[], None]:
        return lambda: tasks(fn, port, n, conns, backend)

    out: list[tuple[str, Callable[[], None]]] = [
        ("ours: SMTPClient (blocking)", lambda: threads(ours_blocking, port, n, conns)),
        ("ours: AsyncSMTPClient (asyncio)", on("asyncio", asyncio_fn)),
        ("ours: AsyncSMTPClient (anyio/asyncio)", on("asyncio", anyio_fn)),
        ("ours: AsyncSMTPClient (anyio/trio)", on("trio", anyio_fn)),
        ("peer: smtplib", lambda: threads(peer_smtplib, port, n, conns)),
    ]
    try:
        import aiosmtplib  # noqa: F401

        out.append(("peer: aiosmtplib", lambda: tasks(peer_aiosmtplib, port, n, conns, "asyncio")))
    except ImportError:
        pass
    return out


def best(fn: Callable[[], None], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]}; CPUs: {os.cpu_count()}; best of {args.runs}")
    print(f"SMTP to smtp-sink: {args.messages} messages of {len(MESSAGE)} octets\n")
    with smtp_sink() as port:
        for conns in (1, 20):
            print(f"{conns} connection(s)")
            print(f"{'client':<40} {'seconds':>8} {'msgs/s':>8}")
            results: list[tuple[str, float]] = []
            for name, fn in rows(port, args.messages, conns):
                seconds = best(fn, args.runs)
                results.append((name, seconds))
                print(f"{name:<40} {seconds:8.2f} {args.messages / seconds:8.0f}")
            ours = min(s for name, s in results if name.startswith("ours"))
            peers = min(s for name, s in results if name.startswith("peer"))
            print(f"fastest ours / fastest peer: {peers / ours:.2f}x\n")
    asyncio.set_event_loop_policy(None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
