"""``mailproto fetch``: download a mailbox over IMAP or POP3 into a Maildir or an mbox.

IMAP (RFC 3501 / 9051): each folder is EXAMINEd (read-only, so fetching changes no
flag), ``UID FETCH last+1:* (UID FLAGS INTERNALDATE RFC822.SIZE)`` lists what is new
(the UIDs above the last one fetched under the same UIDVALIDITY, 2.3.1.1; ``n:*``
always names the last message, so the UIDs are filtered), and each body is read with
``BODY.PEEK[]``, streamed to a spool file. Flags become Maildir info.

POP3 (RFC 1939): UIDL names the messages; those not downloaded before are RETRieved.
Unless ``--keep``, every message safely stored is marked with DELE and removed by the
QUIT at the end (an interrupted run QUITs nothing, so nothing is lost; the next run
deletes what it had stored). A server without UIDL can only be fetched whole.

The state file sits next to the target (``TARGET.mailproto-fetch.json``) and moves on
only after a message is on disk (fsynced), so a run cut short resumes where it stopped.
A progress bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, TextIO

from ..blocking import IMAPClient, POP3Client
from ..errors import ServerError
from .common import (
    EX_OK,
    EX_USAGE,
    CliError,
    Parser,
    add_connection_options,
    ending,
    human_size,
    open_imap,
    open_pop3,
    run,
    safe,
    server_address,
)
from .local_store import State, Target, target_for

__all__ = ["Progress", "main", "parser"]

PROG = "mailproto fetch"
STATE_SUFFIX = ".mailproto-fetch.json"
SAVE_EVERY = 1.0  # seconds between state saves (and always at the end)
SPOOL_IN_MEMORY = 4 << 20


def parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Download a mailbox into a Maildir or an mbox.")
    p.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="maildir:DIR|mbox:FILE",
        help="where the messages go (created when missing)",
    )
    p.add_argument("--protocol", choices=("imap", "pop3"), default="imap")
    p.add_argument("--folder", metavar="NAME", help="the IMAP folder (default INBOX)")
    p.add_argument(
        "--all-folders",
        action="store_true",
        help="every IMAP folder: Maildir++ subfolders, or one mbox per folder in the "
        "directory mbox:DIR",
    )
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--keep", action="store_true", help="POP3: leave the messages on the server")
    keep.add_argument(
        "--delete",
        dest="keep",
        action="store_false",
        help="POP3: delete them once stored (the default)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    add_connection_options(p, "imap,pop3")
    return p


def main(argv: list[str]) -> int:
    """``mailproto fetch ARGS``: the exit status."""
    return run(PROG, parser(), argv, _fetch)


class Progress:
    """A one-line progress bar on a terminal (nothing when ``stream`` is not one)."""

    def __init__(self, stream: TextIO, *, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.label = ""
        self.total = self.done = self.total_bytes = self.done_bytes = 0
        self._drawn = 0.0

    def start(self, label: str, total: int, total_bytes: int) -> None:
        self.label, self.total, self.total_bytes = label, total, total_bytes
        self.done = self.done_bytes = 0
        self._draw(force=True)

    def advance(self, size: int) -> None:
        self.done += 1
        self.done_bytes += size
        self._draw(force=self.done == self.total)

    def _draw(self, *, force: bool = False) -> None:
        if not self.enabled or not self.total:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        width = shutil.get_terminal_size((80, 24)).columns
        counts = f" {self.done}/{self.total} {human_size(self.done_bytes)}"
        label = safe(self.label)[:24]
        bar_width = max(10, width - len(label) - len(counts) - 5)
        filled = bar_width * self.done // self.total
        bar = "#" * filled + "-" * (bar_width - filled)
        self.stream.write(f"\r{label} [{bar}]{counts}"[: width - 1])
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.total:
            self.stream.write("\n")
            self.stream.flush()


def _parse_target(value: str) -> tuple[str, Path]:
    kind, colon, path = value.partition(":")
    if not colon or kind not in ("maildir", "mbox") or not path:
        raise CliError(f"--to {value!r}: give maildir:DIR or mbox:FILE", EX_USAGE)
    return kind, Path(path).expanduser().absolute()


def _folder_path(kind: str, root: Path, folder: str, delimiter: str | None) -> Path:
    """Where a folder goes with --all-folders: Maildir++ ``.A.B``, or ``DIR/A.B`` (mbox)."""
    parts = folder.split(delimiter) if delimiter else [folder]
    clean = []
    for part in parts:
        text = "".join(c if c.isprintable() and c not in "/\\.\0" else "_" for c in part)
        clean.append(text or "_")
    if kind == "maildir":
        if folder.upper() == "INBOX":
            return root
        return root / ("." + ".".join(clean))
    return root / ("INBOX" if folder.upper() == "INBOX" else ".".join(clean))


class _Saver:
    """Saves the state now and then, and at the end."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.last = time.monotonic()

    def tick(self) -> None:
        if time.monotonic() - self.last >= SAVE_EVERY:
            self.state.save()
            self.last = time.monotonic()


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)


def _fetch(args: argparse.Namespace) -> int:
    kind, path = _parse_target(args.target)
    if args.protocol == "pop3" and (args.folder or args.all_folders):
        raise CliError("--folder and --all-folders are for IMAP", EX_USAGE)
    if args.protocol == "imap" and args.keep:
        raise CliError("--keep is for POP3 (IMAP fetching never deletes)", EX_USAGE)
    if args.folder and args.all_folders:
        raise CliError("--folder or --all-folders, not both", EX_USAGE)
    state = State(path.with_name(path.name + STATE_SUFFIX))
    host, port = server_address(args.server, args.protocol, args.tls == "implicit")
    account = f"{args.protocol}://{args.user}@{host}:{port}"
    progress = Progress(sys.stderr, enabled=not args.quiet)
    saver = _Saver(state)
    try:
        if args.protocol == "imap":
            with ending(open_imap(args)) as imap:
                _fetch_imap(args, imap, kind, path, account, saver, progress)
        else:
            client = open_pop3(args)
            try:
                _fetch_pop3(args, client, kind, path, account, saver, progress)
            except BaseException:
                client.close()  # no QUIT: nothing is deleted
                raise
    finally:
        progress.finish()
        state.save()
    return EX_OK


def _fetch_imap(
    args: argparse.Namespace,
    imap: IMAPClient,
    kind: str,
    root: Path,
    account: str,
    saver: _Saver,
    progress: Progress,
) -> None:
    if args.all_folders:
        folders = [
            (entry.mailbox, entry.delimiter)
            for entry in imap.list("", "*")
            if not {"\\noselect", "\\nonexistent"} & {a.lower() for a in entry.attributes}
        ]
        folders.sort(key=lambda f: (f[0].upper() != "INBOX", f[0]))
    else:
        folders = [(args.folder or "INBOX", None)]
    for folder, delimiter in folders:
        where = _folder_path(kind, root, folder, delimiter) if args.all_folders else root
        target = target_for(kind, where, subfolder=where != root)
        try:
            count, size = _fetch_folder(imap, folder, target, account, saver, progress)
        finally:
            target.close()
        if not args.quiet:
            print(f"{safe(folder)}: {count} new ({human_size(size)}) -> {kind}:{where}")


def _fetch_folder(
    imap: IMAPClient, folder: str, target: Target, account: str, saver: _Saver, progress: Progress
) -> tuple[int, int]:
    mailbox = imap.examine(folder)
    uidvalidity = mailbox.uidvalidity or 0
    known = saver.state.imap(account, folder)
    last = 0
    if known is not None:
        if known[0] == uidvalidity:
            last = known[1]
        else:
            print(
                f"{PROG}: {safe(folder)}: UIDVALIDITY changed, fetching it all again",
                file=sys.stderr,
            )
    listing = (
        imap.fetch(f"{last + 1}:*", ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE"])
        if (mailbox.exists)
        else {}
    )
    new = sorted(uid for uid in listing if uid > last)
    total_bytes = sum(int(listing[uid].get("RFC822.SIZE") or 0) for uid in new)
    progress.start(folder, len(new), total_bytes)
    done_bytes = 0
    for uid in new:
        info = listing[uid]
        with _spool() as spool:
            size = imap.fetch_stream(uid, "", spool)
            spool.seek(0)
            if size:  # nothing: expunged meanwhile
                target.add(spool, info.get("FLAGS") or (), info.get("INTERNALDATE"))
        saver.state.set_imap(account, folder, uidvalidity, uid)
        saver.tick()
        done_bytes += size
        progress.advance(size)
    if known is None or known[0] != uidvalidity:
        saver.state.set_imap(account, folder, uidvalidity, max(new, default=last))
    progress.finish()
    progress.total = 0
    return len(new), done_bytes


def _fetch_pop3(
    args: argparse.Namespace,
    client: POP3Client,
    kind: str,
    path: Path,
    account: str,
    saver: _Saver,
    progress: Progress,
) -> None:
    state = saver.state
    try:
        listing = client.uidl()
    except ServerError:
        if args.keep:
            print(
                f"{PROG}: the server has no UIDL: every message is fetched again",
                file=sys.stderr,
            )
        listing = [(n, "") for n, _ in client.list()]
    sizes = dict(client.list())
    seen = state.pop3(account)
    new = [(n, uid) for n, uid in listing if not uid or uid not in seen]
    progress.start("POP3", len(new), sum(sizes.get(n, 0) for n, _ in new))
    target = target_for(kind, path)
    stored: set[int] = set()
    size_done = 0
    try:
        for n, uid in new:
            with _spool() as spool:
                size = client.retr(n, spool)
                spool.seek(0)
                target.add(spool)
            stored.add(n)
            if uid:
                seen.add(uid)
                state.set_pop3(account, seen)
                saver.tick()
            size_done += size
            progress.advance(size)
    finally:
        target.close()
    deleted: list[int] = []
    if not args.keep:
        deleted = [n for n, uid in listing if n in stored or (uid and uid in seen)]
        if deleted:
            client.dele_many(deleted)
    client.quit()
    # What is left on the server and was stored: the UIDLs worth remembering.
    gone = {uid for n, uid in listing if n in deleted}
    state.set_pop3(account, {uid for n, uid in listing if uid in seen and uid not in gone})
    progress.finish()
    progress.total = 0
    if not args.quiet:
        print(
            f"POP3: {len(new)} new ({human_size(size_done)}) -> {kind}:{path}"
            + (f", {len(deleted)} deleted on the server" if deleted else "")
        )
