"""Where ``mailproto fetch`` puts mail: a Maildir or an mbox, and its resume state.

- Maildir (the layout of https://cr.yp.to/proto/maildir.html and Dovecot's Maildir++ for
  subfolders): each message is written to ``tmp/`` under a unique name, fsynced, renamed
  into ``new/`` (no flags) or ``cur/`` with its flags as the ``:2,`` info (IMAP
  ``\\Draft`` D, ``\\Flagged`` F, ``$Forwarded`` P, ``\\Answered`` R, ``\\Seen`` S,
  ``\\Deleted`` T, in ASCII order), and the directory is fsynced; the file's mtime is
  the IMAP INTERNALDATE. Lines end with LF, as local mail readers expect.
- mbox (the mboxrd variant): a ``From `` separator line, the message with LF line ends,
  every line matching ``>*From `` quoted with one more ``>``, a blank line. The file is
  locked (flock) while a fetch writes it; a message is fsynced before the state moves
  past it, and a message cut short is truncated away. ``Status:`` / ``X-Status:``
  fields carry the flags as mutt reads them (the message's own are dropped).
- The state file (JSON, replaced atomically): per account, the UIDVALIDITY and last UID
  of each IMAP folder (RFC 3501 2.3.1.1: UIDs are only comparable under one
  UIDVALIDITY), or the POP3 UIDLs (RFC 1939 7) already downloaded.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import itertools
import json
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import IO, Any

__all__ = ["MaildirTarget", "MboxTarget", "State", "maildir_info", "target_for"]

_COPY = 1 << 16

# IMAP flag -> Maildir info letter.
FLAG_LETTERS = {
    "\\draft": "D",
    "\\flagged": "F",
    "$forwarded": "P",
    "\\answered": "R",
    "\\seen": "S",
    "\\deleted": "T",
}


def maildir_info(flags: Iterable[str]) -> str:
    """The Maildir info letters for IMAP flags, in ASCII order ("" when none map)."""
    return "".join(sorted({FLAG_LETTERS[f.lower()] for f in flags if f.lower() in FLAG_LETTERS}))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lines(source: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """(piece, at a line's start) with CRLF made LF; long lines come in pieces."""
    start = True
    while True:
        piece = source.readline(_COPY)
        if not piece:
            return
        ends = piece.endswith(b"\n")
        if piece.endswith(b"\r\n"):
            piece = piece[:-2] + b"\n"
        elif piece.endswith(b"\r") and not ends:
            following = source.read(1)
            if following == b"\n":
                piece = piece[:-1] + b"\n"
                ends = True
            elif following:
                source.seek(-1, os.SEEK_CUR)
        yield piece, start
        start = ends


class MaildirTarget:
    """A Maildir (created when missing); `add` delivers one message the safe way."""

    _counter = itertools.count(1)

    def __init__(self, path: Path, *, subfolder: bool = False) -> None:
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        if subfolder:  # Maildir++: marks a folder for Dovecot and Courier
            (path / "maildirfolder").touch(mode=0o600)
        host = socket.gethostname() or "localhost"
        self._host = host.replace("/", "\\057").replace(":", "\\072")

    def _unique(self) -> str:
        now = time.time()
        seconds, micro = int(now), int((now - int(now)) * 1e6)
        return f"{seconds}.M{micro}P{os.getpid()}Q{next(self._counter)}.{self._host}"

    def add(
        self,
        source: IO[bytes],
        flags: Iterable[str] = (),
        date: datetime.datetime | None = None,
    ) -> Path:
        """Copy ``source`` (a message, CRLF or LF) into the Maildir; its final path."""
        name = self._unique()
        tmp = self.path / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                for piece, _ in _lines(source):
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            if date is not None:
                stamp = date.timestamp()
                os.utime(tmp, (stamp, stamp))
            info = maildir_info(flags)
            final = self.path / "new" / name if not info else self.path / "cur" / f"{name}:2,{info}"
            os.rename(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(final.parent)
        return final

    def close(self) -> None:
        """Nothing to release (every message is complete once `add` returns)."""


_STATUS_FIELD = re.compile(rb"(?i)(status|x-status)[ \t]*:")
_FROM_LINE = re.compile(rb">*From ")


class MboxTarget:
    """An mbox file (mboxrd), locked while open; `add` appends one message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "ab")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            raise OSError(f"{path}: locked by another program") from None

    def add(
        self,
        source: IO[bytes],
        flags: Iterable[str] = (),
        date: datetime.datetime | None = None,
    ) -> Path:
        """Append ``source`` with a ``From `` line; truncated away if it fails midway."""
        out = self._file
        out.seek(0, os.SEEK_END)
        start = out.tell()
        try:
            self._write(out, source, {f.lower() for f in flags}, date)
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                out.flush()
                os.ftruncate(out.fileno(), start)
            raise
        return self.path

    def _write(
        self, out: IO[bytes], source: IO[bytes], flags: set[str], date: datetime.datetime | None
    ) -> None:
        source.seek(0)
        headers = BytesHeaderParser(policy=compat32).parse(source)
        source.seek(0)
        sender = re.sub(r"[<>\s]", "", str(headers.get("Return-Path", ""))) or "MAILER-DAEMON"
        when = (date or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
        out.write(f"From {sender} {when.strftime('%a %b %d %H:%M:%S %Y')}\n".encode())
        status = b"Status: " + (b"RO" if "\\seen" in flags else b"O") + b"\n"
        x_status = "".join(
            letter
            for flag, letter in (("\\answered", "A"), ("\\flagged", "F"), ("\\draft", "T"))
            if flag in flags
        ) + ("D" if "\\deleted" in flags else "")
        in_header, dropping, last = True, False, b"\n"
        for piece, at_start in _lines(source):
            if in_header and at_start:
                if piece == b"\n":
                    in_header = False
                    out.write(status)
                    if x_status:
                        out.write(f"X-Status: {x_status}\n".encode())
                elif piece[:1] in (b" ", b"\t"):
                    if dropping:
                        continue
                else:
                    dropping = _STATUS_FIELD.match(piece) is not None
                    if dropping:
                        continue
            elif in_header and dropping:
                continue
            if at_start and _FROM_LINE.match(piece):
                out.write(b">")
            out.write(piece)
            last = piece
        if in_header:
            out.write(b"\n" if not last.endswith(b"\n") else b"")
            out.write(status + b"\n")
        elif not last.endswith(b"\n"):
            out.write(b"\n")
        out.write(b"\n")

    def close(self) -> None:
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()


Target = MaildirTarget | MboxTarget


def target_for(kind: str, path: Path, *, subfolder: bool = False) -> Target:
    """A Maildir (a Maildir++ subfolder when ``subfolder``) or an mbox at ``path``."""
    return MaildirTarget(path, subfolder=subfolder) if kind == "maildir" else MboxTarget(path)


class State:
    """The resume state in a JSON file; `save` replaces it atomically (fsync, rename)."""

    VERSION = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"version": self.VERSION, "accounts": {}}
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise OSError(
                f"{path}: unreadable state file ({exc}); remove it to fetch all again"
            ) from None
        if isinstance(loaded, dict) and isinstance(loaded.get("accounts"), dict):
            self.data = loaded

    def _account(self, account: str) -> dict[str, Any]:
        accounts: dict[str, Any] = self.data["accounts"]
        entry = accounts.setdefault(account, {})
        assert isinstance(entry, dict)
        return entry

    def imap(self, account: str, folder: str) -> tuple[int, int] | None:
        """(UIDVALIDITY, last UID fetched) of a folder, or None."""
        folders = self._account(account).get("folders", {})
        entry = folders.get(folder)
        if not isinstance(entry, dict):
            return None
        try:
            return int(entry["uidvalidity"]), int(entry["last_uid"])
        except (KeyError, TypeError, ValueError):
            return None

    def set_imap(self, account: str, folder: str, uidvalidity: int, last_uid: int) -> None:
        folders = self._account(account).setdefault("folders", {})
        folders[folder] = {"uidvalidity": uidvalidity, "last_uid": last_uid}

    def pop3(self, account: str) -> set[str]:
        """The UIDLs already downloaded (and still on the server when last seen)."""
        return {str(u) for u in self._account(account).get("uidls", [])}

    def set_pop3(self, account: str, uidls: Iterable[str]) -> None:
        self._account(account)["uidls"] = sorted(uidls)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(self.data, out, indent=1, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
