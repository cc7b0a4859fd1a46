"""The MDA as one object: users, store and authenticator shared by its LMTP, POP3, IMAP servers.

`MDA` holds the pieces every session needs and hands out session flows
(``session(info) -> Op[None]``) that any flavour's ``serve()`` runs: blocking threads,
asyncio or anyio. The flows reach the store and the users file only through `Call`
effects made by `_calls.blocking_call`: the blocking driver runs them in the session's thread,
the async drivers in a worker thread (``anyio.to_thread``), so scrypt, fsync and SQLite
never stall an event loop.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._effects import Op, TransportInfo
from .auth import Authenticator
from .store import MailStore, UserStore
from .users import User, UserDB

__all__ = ["MDA"]


class MDA:
    """The shared state of the MDA's servers, and their session factories.

    ``data_dir`` holds ``users.toml``, ``mail/`` (the store) and ``pop3-locks/`` unless
    ``users`` or ``store`` are given. ``allow_plaintext`` lets passwords cross a
    connection without TLS (USER/PASS, SASL PLAIN and LOGIN); keep it for loopback.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        users: UserDB | None = None,
        store: MailStore | None = None,
        authenticator: Authenticator | None = None,
        tls_context: Any = None,
        allow_plaintext: bool = False,
        hostname: str = "localhost",
        lmtp_idle_timeout: float = 300.0,
        pop3_idle_timeout: float = 600.0,
        imap_idle_timeout: float = 1800.0,
        max_message_size: int = 50 * 1024 * 1024,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.users = users if users is not None else UserDB(self.data_dir / "users.toml")
        if store is None:
            from .maildir import MaildirStore  # not for a process that only queues mail

            store = MaildirStore(self.data_dir / "mail")
        self.store = store
        self.authenticator = authenticator or Authenticator(self.users, hostname=hostname)
        self.tls_context = tls_context
        self.allow_plaintext = allow_plaintext
        self.hostname = hostname
        self.lmtp_idle_timeout = lmtp_idle_timeout
        self.pop3_idle_timeout = pop3_idle_timeout
        self.imap_idle_timeout = imap_idle_timeout
        self.max_message_size = max_message_size
        self._lock_dir = self.data_dir / "pop3-locks"
        self._mutex = threading.Lock()
        self._maildrops: set[str] = set()
        self._quotas: dict[str, int | None] = {}

    # -- session factories (pass these to serve()) ---------------------------------------

    def lmtp_session(self, info: TransportInfo) -> Op[None]:
        """The LMTP delivery session for one connection (RFC 2033)."""
        from .lmtp import lmtp_flow

        return lmtp_flow(self, info)

    def pop3_session(self, info: TransportInfo) -> Op[None]:
        """The POP3 session for one connection (RFC 1939 and extensions)."""
        from .pop3 import pop3_flow

        return pop3_flow(self, info)

    def imap_session(self, info: TransportInfo) -> Op[None]:
        """The IMAP session for one connection (RFC 3501 / RFC 9051)."""
        from .imap import imap_flow

        return imap_flow(self, info)

    # -- helpers the flows call (through Call effects) -----------------------------------

    def user_store(self, name: str, *, record: User | None = None) -> UserStore:
        """The user's store, with the users file's quota applied (when it sets one);
        ``record``: the user's entry, when the caller has just looked it up."""
        store = self.store.user(name)
        if record is None or record.name != name:
            record = self.users.get(name)
        quota = record.quota if record is not None else None
        set_quota: Callable[[int | None], None] | None = getattr(store, "set_quota", None)
        if set_quota is not None:
            with self._mutex:
                known = self._quotas.get(name, -1)  # -1: never applied by us
            if known != quota and (quota is not None or known != -1):
                set_quota(quota)  # None (removed from the file): the store's default
                with self._mutex:
                    self._quotas[name] = quota
        return store

    def lock_maildrop(self, name: str) -> Callable[[], None] | None:
        """Take the user's POP3 maildrop lock (RFC 1939 section 8): a release function,
        or None when another session (here or in another process) holds it."""
        with self._mutex:
            if name in self._maildrops:
                return None
            self._maildrops.add(name)
        try:
            self._lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._lock_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            self._unmark(name)
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            self._unmark(name)
            return None

        def release() -> None:
            os.close(fd)  # closing drops the flock
            self._unmark(name)

        return release

    def _unmark(self, name: str) -> None:
        with self._mutex:
            self._maildrops.discard(name)
