"""``mailproto queue list|show|flush|delete``: look at and act on the MTA's queue.

The queue (docs/mta-queue.md) is the spool of RFC 5321 section 4.5.4.1: messages the MTA
accepted and has not yet delivered or bounced. These commands work while the MTA runs:
``flush`` and ``delete`` take the entry's lock (the delivery runner holds it while it
delivers), and ``flush`` drops a ``flush`` file into the queue directory that the runner
watches. ``delete`` removes an entry without a bounce, as Postfix's ``postsuper -d``.

Text that came from the network (addresses, replies, headers) is printed with control
characters escaped, so a hostile message cannot drive the terminal. Exit statuses follow
sysexits.h as ``mailproto user`` does: 64 usage, 66 no such queue or entry, 74 I/O
error, 75 entry busy (being delivered: try again), 78 a queue in a layout this version
does not read.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .queue import EnvelopeError, Queue, QueueEntry, QueueLayoutError

__all__ = ["cmd_delete", "cmd_flush", "cmd_list", "cmd_show", "main", "register"]

PROG = "mailproto queue"
DEFAULT_DATA = "mailproto-data"
EX_OK = 0
EX_USAGE = 64
EX_NOINPUT = 66
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_CONFIG = 78
_HEADER_LIMIT = 256 * 1024  # octets of header block `show` prints at most


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors to `main` instead of exiting with status 2."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.format_usage().rstrip()}\n{self.prog}: error: {message}")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``queue`` and its actions to a ``mailproto`` subparsers object; each action's
    namespace carries ``func`` (call ``args.func(args)`` for the exit status)."""
    data_help = f"the data directory; the queue is DIR/queue (default: ./{DEFAULT_DATA})"
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "queue", help="look at and act on the MTA's queue", description="The MTA's queue."
    )
    parser.add_argument("--data", metavar="DIR", default=DEFAULT_DATA, help=data_help)
    sub = parser.add_subparsers(dest="queue_command", required=True)

    # --data is also accepted after the action; SUPPRESS keeps the group's default.
    def action(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
        p.add_argument("--data", metavar="DIR", default=argparse.SUPPRESS, help=data_help)
        p.set_defaults(func=func)
        return p

    action("list", "one line per queued message, like mailq", cmd_list)
    show = action("show", "a message's envelope and header block", cmd_show)
    show.add_argument("id")
    flush = action("flush", "retry now every deferred message, or one", cmd_flush)
    flush.add_argument("id", nargs="?")
    delete = action("delete", "remove messages from the queue, without a bounce", cmd_delete)
    delete.add_argument("ids", metavar="ID", nargs="+")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``queue`` action; ``argv`` may start with the word ``queue``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["queue"]:
        args_list = args_list[1:]
    top = _Parser(prog="mailproto")
    register(top.add_subparsers(parser_class=_Parser))
    try:
        args = top.parse_args(["queue", *args_list])
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EX_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    status: int = args.func(args)
    return status


# -- helpers ----------------------------------------------------------------------------


def _error(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _safe(text: str) -> str:
    """Printable text: control and other non-printable characters become escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _open(args: argparse.Namespace) -> Queue | int:
    path = Path(args.data) / "queue"
    try:
        return Queue(path, create=False)
    except FileNotFoundError:
        return _error(f"no queue in {path} (is --data right?)", EX_NOINPUT)
    except QueueLayoutError as exc:
        return _error(_safe(str(exc)), EX_CONFIG)


def _last_reply(entry: QueueEntry) -> str | None:
    """The most recent reply any recipient got, quoted, and the host that gave it."""
    tried = [r for r in entry.recipients if r.last_reply is not None]
    if not tried:
        return None
    r = max(tried, key=lambda r: r.last_attempt or 0.0)
    where = f" ({r.remote_mta})" if r.remote_mta else ""
    return f"{r.last_reply!r}{where}"


def _line(entry: QueueEntry) -> str:
    rcpts = " ".join(f"<{r.address}>:{r.state}" for r in entry.recipients)
    parts = [
        entry.id,
        _when(entry.arrival),
        str(entry.size),
        f"<{entry.sender}>",
        rcpts,
        f"next={_when(entry.next_attempt)}",
    ]
    if entry.kind != "message":
        parts.insert(4, f"[{entry.kind}]")
    last = _last_reply(entry)
    if last is not None:
        parts.append(f"last={last}")
    return _safe("  ".join(parts))


# -- actions ----------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    """One line per entry, oldest first: id, arrival, size, <sender>, <recipient>:state
    for each recipient, next attempt, and the last reply; then a total."""
    queue = _open(args)
    if isinstance(queue, int):
        return queue
    try:
        count = octets = 0
        for entry_id in queue.ids():
            try:
                entry = queue.read(entry_id)
            except FileNotFoundError:
                continue  # delivered while we listed
            except EnvelopeError as exc:
                print(_safe(f"{entry_id}  unreadable envelope: {exc}"))
                continue
            print(_line(entry))
            count += 1
            octets += entry.size
    except OSError as exc:
        return _error(f"{exc.filename or queue.path}: {exc.strerror or exc}", EX_IOERR)
    if count:
        plural = "" if count == 1 else "s"
        print(f"-- {count} message{plural}, {octets} octets")
    else:
        print("mail queue is empty")
    return EX_OK


def cmd_show(args: argparse.Namespace) -> int:
    """The envelope, field by field, then the message's header block."""
    queue = _open(args)
    if isinstance(queue, int):
        return queue
    try:
        entry = queue.read(args.id)
        with queue.open_message(args.id) as message:
            header = _header_block(message)
    except ValueError as exc:  # a malformed id, or EnvelopeError
        return _error(_safe(f"{args.id}: {exc}"), EX_NOINPUT)
    except FileNotFoundError:
        return _error(_safe(f"{args.id}: no such queue entry"), EX_NOINPUT)
    except OSError as exc:
        return _error(f"{exc.filename or queue.path}: {exc.strerror or exc}", EX_IOERR)
    fields = [
        ("id", entry.id),
        ("kind", entry.kind),
        ("arrival", _when(entry.arrival)),
        ("next attempt", _when(entry.next_attempt)),
        ("size", str(entry.size)),
        ("sender", f"<{entry.sender}>"),
        ("client", entry.client),
        ("auth user", entry.auth_user),
        ("body", entry.body),
        ("smtputf8", "yes" if entry.smtputf8 else None),
        ("ret", entry.ret),
        ("envid", entry.envid),
        ("delay warning sent", "yes" if entry.warned else None),
    ]
    for name, value in fields:
        if value is not None:
            print(_safe(f"{name}: {value}"))
    for r in entry.recipients:
        print(_safe(f"recipient: <{r.address}> {r.state}, {r.attempts} attempts"))
        details = [
            ("orcpt", r.orcpt),
            ("notify", None if r.notify is None else ",".join(sorted(r.notify)) or "NEVER"),
            ("last attempt", None if r.last_attempt is None else _when(r.last_attempt)),
            ("last reply", r.last_reply),
            ("remote mta", r.remote_mta),
        ]
        for name, value in details:
            if value is not None:
                print(_safe(f"  {name}: {value}"))
    print()
    for line in header.decode("utf-8", "replace").splitlines():
        print(_safe(line.replace("\t", "    ")))
    return EX_OK


def _header_block(message: Any) -> bytes:
    """The header lines up to the empty line, at most _HEADER_LIMIT octets."""
    out = bytearray()
    while len(out) < _HEADER_LIMIT:
        line = message.readline(_HEADER_LIMIT - len(out))
        if not line or line in (b"\r\n", b"\n"):
            break
        out += line
    return bytes(out)


def cmd_flush(args: argparse.Namespace) -> int:
    """Make every entry (or one) due now and ask the runner for a delivery run."""
    queue = _open(args)
    if isinstance(queue, int):
        return queue
    now = time.time()
    status = EX_OK
    try:
        ids = queue.ids() if args.id is None else [args.id]
        for entry_id in ids:
            with queue.lock(entry_id) as taken:
                if not taken:
                    continue  # being delivered right now: nothing to hurry
                entry = queue.load(entry_id)
                if entry is None:
                    if args.id is not None:
                        status = _error(_safe(f"{entry_id}: no such queue entry"), EX_NOINPUT)
                    continue
                if entry.next_attempt > now:
                    entry.next_attempt = now
                    queue.save(entry)
        queue.request_flush()
    except ValueError as exc:
        return _error(_safe(str(exc)), EX_NOINPUT)
    except OSError as exc:
        return _error(f"{exc.filename or queue.path}: {exc.strerror or exc}", EX_IOERR)
    return status


def cmd_delete(args: argparse.Namespace) -> int:
    """Remove entries under their lock; one being delivered is left (status 75)."""
    queue = _open(args)
    if isinstance(queue, int):
        return queue
    status = EX_OK
    for entry_id in args.ids:
        try:
            with queue.lock(entry_id) as taken:
                if not taken:
                    status = _error(_safe(f"{entry_id}: being delivered; try again"), EX_TEMPFAIL)
                    continue
                if entry_id not in queue:
                    status = _error(_safe(f"{entry_id}: no such queue entry"), EX_NOINPUT)
                    continue
                queue.remove(entry_id)
                print(f"{PROG}: deleted {entry_id}", file=sys.stderr)
        except ValueError as exc:
            status = _error(_safe(str(exc)), EX_NOINPUT)
        except OSError as exc:
            status = _error(f"{exc.filename or queue.path}: {exc.strerror or exc}", EX_IOERR)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
