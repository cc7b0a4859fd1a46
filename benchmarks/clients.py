"""Client libraries against real servers: ours (blocking, asyncio, anyio) and the usual peers.

Run with ``python benchmarks/clients.py`` (or ``make bench``); needs Postfix's
``smtp-sink`` (``/usr/sbin/smtp-sink``), run privately on 127.0.0.1 and an ephemeral
port (as root it is started with ``-u nobody``), and for IMAP Dovecot, run privately as
the tests do (``tests/dovecot_helpers.py``, root needed); ``--skip-imap`` leaves it out.

IMAP: one Dovecot serving 10,000 generated messages (``--imap-messages``); seconds to
FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE) and to download every body (BODY.PEEK[]),
with our `IMAPClient` and `AsyncIMAPClient` (asyncio; anyio on asyncio and trio), with
`imaplib` (raw tuples, no parsing) and with `imapclient` (parsed results). aioimaplib is
measured when installed. Dovecot's caches are warmed by one untimed run first.

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

import report
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


def best(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# --- IMAP ------------------------------------------------------------------------------

ENVELOPE_ITEMS = ["UID", "FLAGS", "RFC822.SIZE", "ENVELOPE"]


@contextmanager
def dovecot(n: int) -> Iterator[Any]:
    import importlib
    import random
    import tempfile
    from pathlib import Path

    import imap_message

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    dovecot_helpers: Any = importlib.import_module("dovecot_helpers")

    reason = dovecot_helpers.unavailable_reason(("imap",))
    if reason:
        raise SystemExit(f"Dovecot: {reason} (use --skip-imap)")
    root = Path(tempfile.mkdtemp(prefix="mailproto-bench-"))
    try:
        rng = random.Random(1)
        maildir = root / "Maildir"
        dovecot_helpers.deliver(maildir, [imap_message.generated_message(rng, i) for i in range(n)])
        (root / "run").mkdir()
        server = dovecot_helpers.start_dovecot(root / "run", maildir, private_root=root.parent)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def imap_ours_blocking(server: Any, items: list[str]) -> int:
    with blocking.IMAPClient("127.0.0.1", server.imap_port, starttls=False) as imap:
        imap.login(server.user, server.password)
        imap.examine("INBOX")
        return len(imap.fetch("1:*", items, uid=False))


async def imap_ours_async(module: Any, server: Any, items: list[str]) -> int:
    async with module.AsyncIMAPClient("127.0.0.1", server.imap_port, starttls=False) as imap:
        await imap.login(server.user, server.password)
        await imap.examine("INBOX")
        return len(await imap.fetch("1:*", items, uid=False))


def imap_imaplib(server: Any, items: list[str]) -> int:
    import imaplib

    imap = imaplib.IMAP4("127.0.0.1", server.imap_port)
    imap.login(server.user, server.password)
    imap.select("INBOX", readonly=True)
    _, data = imap.fetch("1:*", "(" + " ".join(items) + ")")
    imap.logout()
    return sum(1 for d in data if isinstance(d, tuple) or (d and d != b")"))


def imap_imapclient(server: Any, items: list[str]) -> int:
    import imapclient  # type: ignore[import-untyped]

    imap = imapclient.IMAPClient("127.0.0.1", port=server.imap_port, ssl=False)
    imap.login(server.user, server.password)
    count = imap.select_folder("INBOX", readonly=True)[b"EXISTS"]
    imap.use_uid = False
    result = imap.fetch(list(range(1, count + 1)), items)
    imap.logout()
    return len(result)


def imap_rows(server: Any, items: list[str]) -> list[tuple[str, Callable[[], Any]]]:
    def on(backend: str, module: Any) -> Callable[[], Any]:
        return lambda: anyio.run(imap_ours_async, module, server, items, backend=backend)

    return [
        ("ours: IMAPClient (blocking)", lambda: imap_ours_blocking(server, items)),
        ("ours: AsyncIMAPClient (asyncio)", on("asyncio", asyncio_flavour)),
        ("ours: AsyncIMAPClient (anyio/asyncio)", on("asyncio", anyio_flavour)),
        ("ours: AsyncIMAPClient (anyio/trio)", on("trio", anyio_flavour)),
        ("peer: imaplib (raw)", lambda: imap_imaplib(server, items)),
        ("peer: imapclient", lambda: imap_imapclient(server, items)),
    ]


def json_rows(group: str, n: int, results: list[tuple[str, float]], like: str) -> list[report.Row]:
    """msgs/s of each of our rows against the peer that does the same work (``like``),
    then the fastest of ours against each other peer."""
    peers = {name.removeprefix("peer: "): s for name, s in results if name.startswith("peer")}
    ours = [(name.removeprefix("ours: "), s) for name, s in results if name.startswith("ours")]
    main = like if like in peers else min(peers, key=peers.__getitem__, default=None)
    out = [
        report.Row(name, "msgs/s", n / s, main, n / peers[main] if main else None, group=group)
        for name, s in ours
    ]
    fastest, best_s = min(ours, key=lambda x: x[1])
    for peer, s in peers.items():
        if peer != main:
            out.append(report.Row(f"fastest ours: {fastest}", "msgs/s", n / best_s, peer,
                                  n / s, group=group))  # fmt: skip
    return out


def imap_table(n: int, runs: int, out: list[report.Row]) -> None:
    print(f"IMAP from Dovecot: {n} messages")
    with dovecot(n) as server:
        imap_imaplib(server, ["BODY.PEEK[]"])  # warm Dovecot's index and cache
        imap_imaplib(server, ENVELOPE_ITEMS)
        for title, items in (
            ("FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)", ENVELOPE_ITEMS),
            ("FETCH 1:* BODY.PEEK[] (every body)", ["BODY.PEEK[]"]),
        ):
            print(title)
            print(f"{'client':<40} {'seconds':>8} {'msgs/s':>8}")
            results: list[tuple[str, float]] = []
            for name, fn in imap_rows(server, items):
                seconds = best(fn, runs)
                results.append((name, seconds))
                print(f"{name:<40} {seconds:8.2f} {n / seconds:8.0f}")
            ours = min(s for name, s in results if name.startswith("ours"))
            peers = min(s for name, s in results if name.startswith("peer"))
            print(f"fastest ours / fastest peer: {peers / ours:.2f}x\n")
            group = f"IMAP from Dovecot, {n:,} messages: {title}"
            out += json_rows(group, n, results, like="imapclient")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--imap-messages", type=int, default=10000)
    parser.add_argument("--skip-imap", action="store_true")
    parser.add_argument("--skip-smtp", action="store_true")
    report.add_json_option(parser)
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]}; CPUs: {os.cpu_count()}; best of {args.runs}")
    json_out: list[report.Row] = []
    title = "Client libraries against real servers (Dovecot, smtp-sink)"
    settings = {"runs": args.runs, "messages": args.messages, "imap_messages": args.imap_messages}
    if not args.skip_imap:
        imap_table(args.imap_messages, args.runs, json_out)
    if args.skip_smtp:
        report.write_json(args.json, "clients", title, json_out, settings=settings)
        return 0
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
            group = f"SMTP to smtp-sink, {args.messages:,} messages of 1 KB, {conns} connection(s)"
            json_out += json_rows(group, args.messages, results, like="smtplib")
    asyncio.set_event_loop_policy(None)
    report.write_json(args.json, "clients", title, json_out, settings=settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
