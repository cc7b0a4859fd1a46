"""The webmail's page load times with a big folder, and its throughput under 20 clients.

Run with ``python benchmarks/webmail.py [--messages 10000] [--samples 50] [--clients 20]
[--seconds 5] [--json FILE]``. Everything listens on 127.0.0.1 and ephemeral ports and lives in one
temporary directory, removed at the end.

``--messages`` messages (``imap_message.generated_message``) go straight into the MDA's
store (``UserStore.deliver``: the delivery path is not what is measured), then one message
of about 1 MB (a 150 KB text part and an 800 KB PDF attachment, base64), the newest. A
child process (this script with ``--serve``) runs the `MailSystem` (IMAP and submission)
and the `Webmail` in front of it, as ``mailproto serve`` does: one process, one GIL. The
clients are http.client connections in this process, each keeping its session cookie over
one keep-alive connection, as a browser does; they sign in once (not timed).

Rows: the message list (first page: 50 newest of the folder), the list's oldest full page
of 50, and the 1 MB message's page; each the median and p90 of ``--samples``
requests on one connection, after two untimed warm-up requests. Then requests per second
for the list page with ``--clients`` concurrent clients (threads) for ``--seconds``.
Target (issue 10): under 100 ms median for each page with 10,000 messages in the folder.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import anyio
import anyio.to_thread

import imap_message
import mailcorpus
import report
from mailproto_adapters.mda.service import MDA
from mailproto_adapters.mda.users import ScryptParams, UserDB
from mailproto_adapters.mua.webmail import Webmail, WebmailConfig
from mailproto_adapters.system import ListenerConfig, MailSystem, SystemConfig

USER, PASSWORD, DOMAIN = "tester", "test password", "bench.test"
FIRST_TIME = 1_700_000_000
TARGET_MS = 100.0


# --- the server, in a child process ----------------------------------------------------


def serve(data_dir: str) -> None:
    """The child: the mail system and the webmail; the webmail's port on stdout; stops at
    stdin EOF."""
    system = MailSystem(
        SystemConfig(
            data_dir=Path(data_dir),
            hostname=f"mx.{DOMAIN}",
            local_domains=(DOMAIN,),
            listeners=tuple(
                ListenerConfig(service=s) for s in ("lmtp", "smtp", "submission", "imap")
            ),
            allow_plaintext=True,
            grace=1.0,
        )
    ).start()
    webmail = Webmail(
        imap=("127.0.0.1", system.ports["imap"]),
        submission=("127.0.0.1", system.ports["submission"]),
        authenticator=system.mda.authenticator,
        config=WebmailConfig(domain=DOMAIN),
    )

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            port = await tg.start(webmail.serve, "127.0.0.1", 0)
            print(port, flush=True)
            await anyio.to_thread.run_sync(sys.stdin.read)
            await webmail.close(1.0)
            tg.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        system.close(grace=1)


# --- the mailbox -----------------------------------------------------------------------


def big_message(rng: random.Random) -> bytes:
    """About 1 MB: a long text part and a PDF attachment."""
    message = EmailMessage(policy=SMTP)
    message["From"] = "Ada Lovelace <ada@analytical.example>"
    message["To"] = f"{USER}@{DOMAIN}"
    message["Subject"] = "The whole report, with the figures attached"
    message["Date"] = "Sat, 28 Nov 2026 10:15:00 +0000"
    message["Message-ID"] = "<big.report@analytical.example>"
    text: list[str] = []
    while sum(len(p) for p in text) < 150_000:
        text.append(mailcorpus.paragraph(rng))
    message.set_content("\n\n".join(text) + "\n")
    pdf = b"%PDF-1.4\n" + rng.randbytes(800_000) + b"\n%%EOF\n"
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="report.pdf")
    return message.as_bytes()


def fill(data: Path, count: int) -> tuple[int, float]:
    """The store, filled directly; returns the big message's UID and the seconds taken."""
    users = UserDB(data / "users.toml", scrypt=ScryptParams(n=2**4, r=1, p=1))
    users.add(USER, PASSWORD)
    store = MDA(data, users=users).store.user(USER)
    rng = random.Random(10)
    start = time.perf_counter()
    for i in range(count):
        date = datetime.datetime.fromtimestamp(FIRST_TIME + i, datetime.UTC)
        store.deliver(imap_message.generated_message(rng, i), internal_date=date)
    date = datetime.datetime.fromtimestamp(FIRST_TIME + count, datetime.UTC)
    store.deliver(big_message(rng), internal_date=date)
    return count + 1, time.perf_counter() - start


# --- the clients -----------------------------------------------------------------------


class Client:
    """One keep-alive connection with the session cookie, like one browser tab."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = ""

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        if response.will_close:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        return response.status, data

    def login(self) -> None:
        body = urllib.parse.urlencode({"user": USER, "password": PASSWORD}).encode()
        status, _ = self.request("POST", "/login", body)
        if status != 303:
            raise RuntimeError(f"login refused: {status}")

    def get(self, path: str) -> bytes:
        status, data = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status}")
        return data

    def close(self) -> None:
        self.conn.close()


def timed(client: Client, path: str, samples: int) -> tuple[float, float, int]:
    """Median and p90 in ms of ``samples`` GETs, and the page's size."""
    for _ in range(2):
        size = len(client.get(path))
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        client.get(path)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
    return statistics.median(times), p90, size


def concurrent(port: int, path: str, clients: int, seconds: float) -> tuple[float, float, int]:
    """Requests per second of ``clients`` threads over ``seconds``; median ms; errors."""
    tabs = [Client(port) for _ in range(clients)]
    for tab in tabs:
        tab.login()
        tab.get(path)
    times: list[list[float]] = [[] for _ in tabs]
    errors = [0]
    go = threading.Event()
    deadline = [0.0]

    def work(k: int) -> None:
        go.wait()
        while time.perf_counter() < deadline[0]:
            start = time.perf_counter()
            try:
                tabs[k].get(path)
            except (OSError, RuntimeError, http.client.HTTPException):
                errors[0] += 1
                continue
            times[k].append((time.perf_counter() - start) * 1000)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    deadline[0] = start + seconds
    go.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for tab in tabs:
        tab.close()
    done = [t for per in times for t in per]
    return len(done) / elapsed, statistics.median(done) if done else 0.0, errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    report.add_json_option(parser)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    with tempfile.TemporaryDirectory(prefix="webmail-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        big_uid, seconds = fill(data, args.messages)
        total = args.messages + 1
        print(f"delivered {total} messages into the store in {seconds:.1f} s", flush=True)
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            port = int(child.stdout.readline())
            client = Client(port)
            client.login()
            oldest = max(1, total // 50)  # the oldest full page of 50
            rows = []
            for name, path in (
                ("message list, first page", "/list?f=INBOX"),
                (f"message list, page {oldest} (oldest)", f"/list?f=INBOX&page={oldest}"),
                ("1 MB message", f"/msg?f=INBOX&uid={big_uid}"),
            ):
                median, p90, size = timed(client, path, args.samples)
                rows.append((name, median, p90, size))
            client.close()
            rps, under_load, errors = concurrent(port, "/list?f=INBOX", args.clients, args.seconds)
        finally:
            assert child.stdin is not None
            child.stdin.close()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    load = report.load_average()
    print()
    print(f"webmail, {total} messages in INBOX, server on 127.0.0.1 ({args.samples} samples)")
    print()
    print("| Page | Median | p90 | Page size | Target |")
    print("|---|---|---|---|---|")
    for name, median, p90, size in rows:
        verdict = "met" if median < TARGET_MS else "MISSED"
        print(
            f"| {name} | {median:.1f} ms | {p90:.1f} ms | {size / 1024:.0f} KiB | "
            f"< {TARGET_MS:.0f} ms: {verdict} |"
        )
    print()
    print(
        f"| List page, {args.clients} concurrent clients, {args.seconds:g} s | "
        f"{rps:.1f} requests/s | median {under_load:.1f} ms | {errors} errors |"
    )
    print(f"\n{report.cpu_model()} x {os.cpu_count()}; load average at the end {load}")
    json_rows: list[report.Row] = []
    for name, median, p90, _ in rows:
        target = f"target < {TARGET_MS:.0f} ms median"
        json_rows.append(
            report.Row(f"{name}, median", "ms", median, higher_is_better=False, note=target)
        )
        json_rows.append(report.Row(f"{name}, p90", "ms", p90, higher_is_better=False))
    json_rows.append(report.Row(f"list page, {args.clients} concurrent clients", "requests/s", rps))
    report.write_json(
        args.json,
        "webmail",
        f"Webmail page loads, {total} messages in the folder",
        json_rows,
        notes=["The mail system and the webmail share one process (one GIL)."],
        settings=vars(args) | {"serve": None},
    )


if __name__ == "__main__":
    main()
