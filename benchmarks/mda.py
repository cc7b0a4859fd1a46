"""Our MDA's IMAP and POP3 servers against Dovecot, over the same generated messages.

Run with ``python benchmarks/mda.py [--messages N] [--runs K]``; needs Dovecot, run
privately as the tests do (``tests/dovecot_helpers.py``: root, 127.0.0.1, free ports).

N messages (``imap_message.generated_message``, default 10,000) go once into our MDA's
store (``UserStore.deliver`` directly: faster than LMTP, and LMTP is not what is measured)
and once into a private Dovecot Maildir. Our IMAP and POP3 run on `BlockingServer` in a
child process (this script with ``--serve``), so that the clients do not share its GIL and
its RSS can be read from ``/proc``. The same clients (imaplib, poplib) measure both
servers; one untimed pass warms both caches first. Each row is the best of ``--runs``.

Rows: SELECT; FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE); FETCH 1:* BODY.PEEK[];
SEARCH TEXT <word>; 20 concurrent IMAP clients doing a mixed load (each round: SELECT,
FETCH 50 envelopes, STORE +FLAGS (Flagged), SEARCH FLAGGED, NOOP; logins not timed); POP3
RETR of every message. Then memory per idle logged-in IMAP connection on our server (RSS
of the server process before and after 200 connections, divided by 200). Targets:
ours/Dovecot <= 2 on every row, under 100 KB per idle connection.
"""

from __future__ import annotations

import argparse
import datetime
import imaplib
import importlib
import os
import poplib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import imap_message
import mailcorpus
import report
from mailproto_adapters import blocking
from mailproto_adapters._serving import ServeConfig
from mailproto_adapters.mda.auth import Authenticator
from mailproto_adapters.mda.service import MDA
from mailproto_adapters.mda.users import ScryptParams, UserDB

USER, PASSWORD = "tester", "test password"
ENVELOPE = "(FLAGS UID RFC822.SIZE ENVELOPE)"
CLIENTS, ROUNDS, IDLE_CONNECTIONS = 20, 5, 200
FIRST_TIME = 1_700_000_000


# --- our server, in a child process --------------------------------------------------------


def serve(data_dir: str) -> None:
    """The child: IMAP and POP3 on BlockingServer; ports on stdout; stops at stdin EOF."""
    users = UserDB(Path(data_dir) / "users.toml")
    mda = MDA(
        data_dir,
        users=users,
        authenticator=Authenticator(users),
        allow_plaintext=True,
        hostname="bench.test",
    )

    def config(name: str) -> ServeConfig:
        # Room for the 200 idle connections of one peer address (127.0.0.1).
        return ServeConfig(
            host="127.0.0.1", port=0, max_connections=1024, max_per_ip=1024, grace=1.0, name=name
        )

    imap = blocking.BlockingServer(mda.imap_session, config("imap")).start()
    pop3 = blocking.BlockingServer(mda.pop3_session, config("pop3")).start()
    print(imap.port, pop3.port, flush=True)
    try:
        sys.stdin.read()
    finally:
        imap.close(1.0)
        pop3.close(1.0)


class Ours:
    """Our MDA over a fresh data directory, served by a child process."""

    def __init__(self, root: Path, messages: list[bytes]) -> None:
        data = root / "ours"
        # Cheap password hashes: logins are not what is measured (200 of them below).
        users = UserDB(data / "users.toml", scrypt=ScryptParams(n=2**4, r=1, p=1))
        users.add(USER, PASSWORD)
        store = MDA(data, users=users).store.user(USER)
        start = time.perf_counter()
        for i, message in enumerate(messages):
            date = datetime.datetime.fromtimestamp(FIRST_TIME + i, datetime.UTC)
            store.deliver(message, internal_date=date)
        self.deliver_seconds = time.perf_counter() - start
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        imap_port, pop3_port = self.process.stdout.readline().split()
        self.imap_port, self.pop3_port = int(imap_port), int(pop3_port)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def servers(n: int) -> Iterator[tuple[Ours, Any]]:
    """Both servers over the same n messages; everything removed afterwards."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    dovecot_helpers: Any = importlib.import_module("dovecot_helpers")
    reason = dovecot_helpers.unavailable_reason(("imap", "pop3"))
    if reason:
        raise SystemExit(f"Dovecot: {reason}")
    rng = random.Random(1)
    messages = [imap_message.generated_message(rng, i) for i in range(n)]
    root = Path(tempfile.mkdtemp(prefix="mailproto-bench-mda-"))
    ours: Ours | None = None
    dovecot: Any = None
    try:
        ours = Ours(root, messages)
        print(f"delivered {n} messages into our store in {ours.deliver_seconds:.1f} s "
              f"(UserStore.deliver, fsync per message)")  # fmt: skip
        dovecot_helpers.deliver(root / "Maildir", messages, first_time=FIRST_TIME)
        (root / "run").mkdir()
        dovecot = dovecot_helpers.start_dovecot(
            root / "run",
            root / "Maildir",
            protocols=("imap", "pop3"),
            user=USER,
            password=PASSWORD,
            private_root=root.parent,
            extra_config="protocol imap {\n  mail_max_userip_connections = 1000\n}\n",
        )
        yield ours, dovecot
    finally:
        if dovecot is not None:
            dovecot.stop()
        if ours is not None:
            ours.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- the measurements (the same client code for both servers) --------------------------------


def login(port: int) -> Any:
    imap: Any = imaplib.IMAP4("127.0.0.1", port, timeout=300)
    imap.login(USER, PASSWORD)
    return imap


def check(typ: str, data: Any) -> Any:
    if typ != "OK":
        raise RuntimeError(f"{typ} {data!r}")
    return data


def timed_on_connection(port: int, action: Callable[[Any], Any], select: bool = True) -> float:
    """Seconds for ``action`` on a logged-in connection (with INBOX selected)."""
    imap = login(port)
    try:
        if select:
            check(*imap.select("INBOX", readonly=True))
        start = time.perf_counter()
        action(imap)
        return time.perf_counter() - start
    finally:
        imap.logout()


def row_select(port: int) -> float:
    return timed_on_connection(port, lambda i: check(*i.select("INBOX")), select=False)


def row_fetch_envelopes(port: int) -> float:
    return timed_on_connection(port, lambda i: check(*i.fetch("1:*", ENVELOPE)))


def row_fetch_bodies(port: int) -> float:
    return timed_on_connection(port, lambda i: check(*i.fetch("1:*", "(BODY.PEEK[])")))


def search_word() -> str:
    return mailcorpus.WORDS[len(mailcorpus.WORDS) // 3]


def row_search(port: int) -> float:
    word = search_word()
    return timed_on_connection(port, lambda i: check(*i.search(None, "TEXT", f'"{word}"')))


def row_concurrent(port: int) -> float:
    """CLIENTS connections at once, ROUNDS rounds each; wall clock after every login."""
    clients = [login(port) for _ in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS + 1)
    errors: list[BaseException] = []

    def work(imap: Any, k: int) -> None:
        rng = random.Random(k)
        barrier.wait()
        try:
            for _ in range(ROUNDS):
                exists = int(check(*imap.select("INBOX"))[0])
                first = rng.randint(1, max(1, exists - 49))
                check(*imap.fetch(f"{first}:{first + 49}", ENVELOPE))
                check(*imap.store(str(rng.randint(1, exists)), "+FLAGS", "(\\Flagged)"))
                check(*imap.search(None, "FLAGGED"))
                check(*imap.noop())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c, k)) for k, c in enumerate(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    for c in clients:
        c.logout()
    if errors:
        raise errors[0]
    return seconds


def row_pop3(port: int) -> float:
    pop = poplib.POP3("127.0.0.1", port, timeout=300)
    try:
        pop.user(USER)
        pop.pass_(PASSWORD)
        start = time.perf_counter()
        count = pop.stat()[0]
        for i in range(1, count + 1):
            pop.retr(i)
        return time.perf_counter() - start
    finally:
        pop.quit()


def idle_memory(ours: Ours) -> float:
    """KiB of server RSS per idle logged-in IMAP connection."""
    time.sleep(0.5)
    before = ours.rss_kib()
    clients = [login(ours.imap_port) for _ in range(IDLE_CONNECTIONS)]
    time.sleep(0.5)
    after = ours.rss_kib()
    for c in clients:
        c.logout()
    print(f"server RSS {before} KiB -> {after} KiB with {IDLE_CONNECTIONS} idle connections")
    return (after - before) / IDLE_CONNECTIONS


def best(fn: Callable[[int], float], port: int, runs: int) -> float:
    return min(fn(port) for _ in range(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    report.add_json_option(parser)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    n = args.messages
    # SIGTERM (timeout, kill) still stops Dovecot and our server: the finally blocks run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    print(f"Python {sys.version.split()[0]}; CPUs: {os.cpu_count()}; {n} messages; "
          f"best of {args.runs}")  # fmt: skip
    rows: list[tuple[str, Callable[[int], float], str]] = [
        ("SELECT INBOX", row_select, "imap"),
        ("FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)", row_fetch_envelopes, "imap"),
        ("FETCH 1:* BODY.PEEK[]", row_fetch_bodies, "imap"),
        (f'SEARCH TEXT "{search_word()}"', row_search, "imap"),
        (f"{CLIENTS} clients x {ROUNDS} mixed rounds", row_concurrent, "imap"),
        ("POP3 RETR all", row_pop3, "pop3"),
    ]
    with servers(n) as (ours, dovecot):
        ports = {
            "ours": {"imap": ours.imap_port, "pop3": ours.pop3_port},
            "dovecot": {"imap": dovecot.ports["imap"], "pop3": dovecot.ports["pop3"]},
        }
        start = time.perf_counter()
        for side in ports.values():  # warm caches: one untimed pass of the single-client rows
            for _, fn, proto in rows:
                if fn is not row_concurrent:
                    fn(side[proto])
        print(f"warm-up pass: {time.perf_counter() - start:.1f} s\n")
        print(f"{'row':<44} {'ours s':>8} {'Dovecot s':>10} {'ours/Dov':>9}")
        worst = 0.0
        json_rows: list[report.Row] = []
        for title, fn, proto in rows:
            mine = best(fn, ports["ours"][proto], args.runs)
            theirs = best(fn, ports["dovecot"][proto], args.runs)
            row = report.Row(title, "s", mine, "Dovecot", theirs, target=0.5)  # ours <= 2x
            row.higher_is_better = False
            json_rows.append(row)
            worst = max(worst, mine / theirs)
            mark = "" if mine / theirs <= 2 else "  > 2x"
            print(f"{title:<44} {mine:8.3f} {theirs:10.3f} {mine / theirs:9.2f}{mark}")
        per_connection = idle_memory(ours)
        print(f"\nworst ours/Dovecot: {worst:.2f} (target <= 2)")
        print(f"memory per idle IMAP connection (ours): {per_connection:.1f} KiB (target < 100)")
    memory = report.Row("memory per idle logged-in IMAP connection", "KiB", per_connection)
    memory.higher_is_better, memory.bound = False, 100.0
    report.write_json(
        args.json,
        "mda",
        "MDA: our IMAP and POP3 servers against Dovecot",
        [*json_rows, memory],
        notes=[f"{n} messages; the same imaplib/poplib clients measure both servers"],
        settings={"messages": n, "runs": args.runs},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
