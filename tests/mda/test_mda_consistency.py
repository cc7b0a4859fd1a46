"""Several IMAP clients at once on one folder, each checking what it sees against RFC 9051.

Four threads, each with its own connection and a seeded random generator, append,
flag, expunge, search and fetch in one INBOX for a bounded time. Each keeps the model a
client is entitled to build from the responses alone (the UID at every sequence number,
the flags last reported per UID) and checks, response by response:

- ``EXISTS n`` never shrinks the mailbox (section 7.4.1: only EXPUNGE does);
- ``EXPUNGE n`` names an existing number and shifts the later ones down, and never
  arrives during FETCH, STORE or SEARCH by sequence number (section 7.4.1);
- a FETCH names an existing number, and the UID it gives for a number never changes;
  UIDs strictly increase with sequence numbers (section 2.3.1.1);
- no UID comes back once expunged, and no APPENDUID is handed out twice;
- SEARCH answers only existing numbers.

When every writer has stopped, one NOOP brings each client up to date: its view (UIDs
and flags, learnt only from untagged responses) must equal the store's.

The test uses a raw socket client so that the order of untagged responses is kept.
"""

from __future__ import annotations

import itertools
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from test_mda_imap import Server, make_mda, simple

from mailproto_adapters._serving import SessionFactory

pytestmark = pytest.mark.interop

CLIENTS = 4
RUN_SECONDS = 3.0
MAX_MESSAGES = 80  # appends pause above this many messages in a client's view
SYSTEM_FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "\\Draft")

_FETCH = re.compile(r"^\* (\d+) FETCH \((.*)\)$")
_UID = re.compile(r"\bUID (\d+)")
_FLAGS = re.compile(r"\bFLAGS \(([^)]*)\)")


class Inconsistent(AssertionError):
    """A response a client may not receive in the state it is in."""


class Shared:
    """What the clients share: the UIDs APPEND handed out, and the UIDs expunged."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.appended: set[int] = set()
        self.expunged: set[int] = set()


class Client:
    """A raw IMAP connection that applies every untagged response to its model, in order."""

    def __init__(self, port: int, name: str, shared: Shared) -> None:
        self.name = name
        self.shared = shared
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.reader = self.sock.makefile("rb")
        self.tag = 0
        self.view: list[int | None] = []  # sequence number - 1 -> UID (None: not yet known)
        self.flags: dict[int, frozenset[str]] = {}
        self.expunged: set[int] = set()
        self.search: list[int] | None = None
        self.log: list[str] = []  # the last exchanges, for the failure message
        greeting = self._line()
        assert greeting.startswith("* OK"), greeting

    # -- the wire ----------------------------------------------------------------------

    def _line(self) -> str:
        raw = self.reader.readline()
        if not raw:
            raise Inconsistent(f"{self.name}: connection closed\n{self.trace()}")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        self.log = [*self.log[-60:], f"S: {line}"]
        if line.endswith("}"):
            raise Inconsistent(f"{self.name}: unexpected literal in {line!r}")
        return line

    def trace(self) -> str:
        return "\n".join(self.log)

    def command(self, text: str, literal: bytes | None = None, by_seq: bool = False) -> str:
        """Send one command; apply its untagged responses; the tagged reply's text."""
        self.tag += 1
        tag = f"c{self.tag}"
        self.log = [*self.log[-60:], f"C: {tag} {text}"]
        if literal is None:
            self.sock.sendall(f"{tag} {text}\r\n".encode())
        else:  # LITERAL+: no continuation to wait for
            head = f"{tag} {text} {{{len(literal)}+}}\r\n".encode()
            self.sock.sendall(head + literal + b"\r\n")
        while True:
            line = self._line()
            if line.startswith(f"{tag} "):
                return line[len(tag) + 1 :]
            if line.startswith("* "):
                self.untagged(line, by_seq)
            else:
                raise Inconsistent(f"{self.name}: unexpected {line!r}\n{self.trace()}")

    def ok(self, text: str, literal: bytes | None = None, by_seq: bool = False) -> str:
        reply = self.command(text, literal, by_seq)
        if not reply.startswith("OK"):
            raise Inconsistent(f"{self.name}: {text!r} -> {reply!r}\n{self.trace()}")
        return reply

    # -- the model ---------------------------------------------------------------------

    def fail(self, why: str) -> NoReturn:
        raise Inconsistent(f"{self.name}: {why}\n{self.trace()}")

    def untagged(self, line: str, by_seq: bool) -> None:
        words = line.split(" ", 3)
        if len(words) >= 3 and words[1].isdigit() and words[2] == "EXISTS":
            n = int(words[1])
            if n < len(self.view):
                self.fail(f"EXISTS {n} below {len(self.view)} without EXPUNGE")
            self.view += [None] * (n - len(self.view))
        elif len(words) >= 3 and words[1].isdigit() and words[2] == "EXPUNGE":
            n = int(words[1])
            if by_seq:
                self.fail("EXPUNGE during a command by sequence number")
            if not 1 <= n <= len(self.view):
                self.fail(f"EXPUNGE {n} with {len(self.view)} messages")
            uid = self.view.pop(n - 1)
            if uid is not None:
                self.expunged.add(uid)
                self.flags.pop(uid, None)
                with self.shared.lock:
                    self.shared.expunged.add(uid)
        elif (match := _FETCH.match(line)) is not None:
            self.fetched(int(match[1]), match[2])
        elif len(words) >= 2 and words[1] == "SEARCH":
            self.search = [int(w) for w in line.split()[2:]]
        elif len(words) >= 2 and words[1] == "BYE" and not self.log[-2].endswith("LOGOUT"):
            self.fail(f"unexpected {line!r}")
        # OK, FLAGS, CAPABILITY, RECENT...: nothing to check here.

    def fetched(self, n: int, items: str) -> None:
        if not 1 <= n <= len(self.view):
            self.fail(f"FETCH {n} with {len(self.view)} messages")
        uid_match = _UID.search(items)
        known = self.view[n - 1]
        if uid_match is not None:
            uid = int(uid_match[1])
            if uid in self.expunged:
                self.fail(f"UID {uid} came back after its EXPUNGE")
            if known is None:
                self.view[n - 1] = known = uid
                self.check_order()
            elif known != uid:
                self.fail(f"message {n} was UID {known}, now UID {uid}")
        flags_match = _FLAGS.search(items)
        if flags_match is not None:
            if known is None:
                return  # a STORE by number on a message not FETCHed yet: learn_new will
            names = flags_match[1].split()
            self.flags[known] = frozenset(
                f for f in names if f.startswith("\\") and f != "\\Recent"
            )

    def check_order(self) -> None:
        known = [uid for uid in self.view if uid is not None]
        if any(a >= b for a, b in itertools.pairwise(known)):
            self.fail(f"UIDs not increasing with sequence numbers: {self.view}")

    def learn_new(self) -> None:
        """FETCH the UIDs and flags of the messages announced by EXISTS."""
        for _ in range(20):  # more may be announced during the FETCH itself
            unknown = [i + 1 for i, uid in enumerate(self.view) if uid is None]
            if not unknown:
                return
            self.ok(f"FETCH {unknown[0]}:{len(self.view)} (UID FLAGS)", by_seq=True)
        self.fail("new messages keep arriving unknown")

    # -- the operations ----------------------------------------------------------------

    def select(self) -> None:
        self.ok("LOGIN alice alice-pw")
        self.ok("SELECT INBOX")
        self.learn_new()

    def known_uids(self) -> list[int]:
        return [uid for uid in self.view if uid is not None]

    def append(self, rng: random.Random, serial: str) -> None:
        flags = " ".join(f for f in SYSTEM_FLAGS if rng.random() < 0.3)
        reply = self.ok(f"APPEND INBOX ({flags})", simple(serial, f"body of {serial}"))
        match = re.search(r"\[APPENDUID \d+ (\d+)\]", reply)
        if match is None:
            raise Inconsistent(f"{self.name}: APPEND without APPENDUID: {reply!r}")
        uid = int(match[1])
        with self.shared.lock:
            if uid in self.shared.appended or uid in self.shared.expunged:
                self.fail(f"APPENDUID {uid} handed out twice")
            self.shared.appended.add(uid)

    def store(self, rng: random.Random) -> None:
        uids = self.known_uids()
        if not uids:
            return
        uid = rng.choice(uids)
        chosen = " ".join(f for f in SYSTEM_FLAGS if rng.random() < 0.5)
        mode = rng.choice(["+FLAGS", "-FLAGS", "FLAGS"])
        self.ok(f"UID STORE {uid} {mode} ({chosen})")

    def store_by_seq(self, rng: random.Random) -> None:
        if not self.view:
            return
        n = rng.randint(1, len(self.view))
        flag = rng.choice(SYSTEM_FLAGS)
        self.ok(f"STORE {n} {rng.choice(['+FLAGS', '-FLAGS'])} ({flag})", by_seq=True)

    def expunge(self, rng: random.Random) -> None:
        uids = self.known_uids()
        if not uids:
            return
        uid = rng.choice(uids)
        self.ok(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
        self.ok(f"UID EXPUNGE {uid}")

    def fetch_all(self) -> None:
        if self.view:
            self.ok("FETCH 1:* (UID FLAGS)", by_seq=True)

    def search_all(self) -> None:
        self.search = None
        self.ok("SEARCH ALL", by_seq=True)
        found = self.search
        if found is None:
            raise Inconsistent(f"{self.name}: SEARCH without * SEARCH\n{self.trace()}")
        if any(not 1 <= n <= len(self.view) for n in found):
            self.fail(f"SEARCH {found} with {len(self.view)} messages")

    def close(self) -> None:
        try:
            self.command("LOGOUT")
        finally:
            self.reader.close()
            self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[str, SessionFactory], Server]]:
    servers: list[Server] = []

    def start(flavour: str, session: SessionFactory) -> Server:
        server = Server(flavour, session)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_concurrent_clients_stay_consistent(tmp_path: Path, serve: Any) -> None:
    mda = make_mda(tmp_path, allow_plaintext=True)
    store = mda.store.user("alice")
    for n in range(10):
        store.deliver(simple(f"seed {n}"))
    server = serve("blocking", mda.imap_session)
    shared = Shared()
    clients = [Client(server.port, f"client{i}", shared) for i in range(CLIENTS)]
    for client in clients:
        client.select()
    errors: list[BaseException] = []
    counts: list[int] = [0] * CLIENTS
    deadline = time.monotonic() + RUN_SECONDS

    def work(index: int) -> None:
        client, rng = clients[index], random.Random(7919 * (index + 1))
        try:
            while time.monotonic() < deadline and not errors:
                roll = rng.random()
                if roll < 0.25:
                    if len(client.view) < MAX_MESSAGES:
                        client.append(rng, f"{client.name}-{counts[index]}")
                elif roll < 0.45:
                    client.store(rng)
                elif roll < 0.55:
                    client.store_by_seq(rng)
                elif roll < 0.70:
                    client.expunge(rng)
                elif roll < 0.80:
                    client.fetch_all()
                elif roll < 0.90:
                    client.search_all()
                else:
                    client.ok("NOOP")
                client.learn_new()
                counts[index] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RUN_SECONDS + 30)
        assert not thread.is_alive(), "a client hung"
    if errors:
        raise errors[0]
    assert all(count > 10 for count in counts), counts
    assert shared.appended, "no APPEND ran"
    assert shared.expunged, "no EXPUNGE was seen"

    # Every writer has stopped: one NOOP brings each client's view up to the store's.
    final = store.mailbox("INBOX").snapshot()
    final_uids = [record.uid for record in final]
    final_flags = {record.uid: frozenset(record.flags) - {"\\Recent"} for record in final}
    assert not set(final_uids) & shared.expunged
    assert len(set(final_uids)) == len(final_uids)
    for client in clients:
        client.ok("NOOP")
        client.learn_new()
        assert client.view == final_uids, client.trace()
        assert client.flags == final_flags, client.trace()
        client.close()
