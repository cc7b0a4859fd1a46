"""The ``mailproto`` command (also ``python -m mailproto_adapters``).

One entry point, one sub-command per component: ``serve`` and ``check-config`` (the whole
system in one process: docs/configuration.md), ``user`` (the MDA's users file:
docs/mda-users.md), ``queue`` (the MTA's queue: docs/mta-queue.md), and the MUA's
``send``, ``fetch``, ``ls`` and ``read`` (docs/mua-cli.md). Each sub-command's module is
imported only when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["main"]

USAGE = """usage: mailproto COMMAND [ARGS...]

commands:
  serve [--config FILE] [--data DIR]   run the mail system (mailproto serve --help)
  check-config [--config FILE]         validate a configuration, print the effective one
  user add|passwd|del|list ...         manage the users file (mailproto user --help)
  queue list|show|flush|delete ...     look at the MTA's queue (mailproto queue --help)
  send ...                             compose and send a message via submission
  fetch ...                            download a mailbox (IMAP or POP3) into a Maildir or mbox
  ls [FOLDER]                          list folders, or the messages of one folder (IMAP)
  read FOLDER UID                      show one message decoded (IMAP)
"""


def _user(argv: list[str]) -> int:
    from .mda import users_cli

    return users_cli.main(["user", *argv])


def _serve(argv: list[str]) -> int:
    from . import serve_cli

    return serve_cli.serve_main(argv)


def _check_config(argv: list[str]) -> int:
    from . import serve_cli

    return serve_cli.check_config_main(argv)


def _queue(argv: list[str]) -> int:
    from .mta import queue_cli

    return queue_cli.main(["queue", *argv])


def _send(argv: list[str]) -> int:
    from .mua import send_cli

    return send_cli.main(argv)


def _fetch(argv: list[str]) -> int:
    from .mua import fetch_cli

    return fetch_cli.main(argv)


def _ls(argv: list[str]) -> int:
    from .mua import read_cli

    return read_cli.ls_main(argv)


def _read(argv: list[str]) -> int:
    from .mua import read_cli

    return read_cli.main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "serve": _serve,
    "check-config": _check_config,
    "user": _user,
    "queue": _queue,
    "send": _send,
    "fetch": _fetch,
    "ls": _ls,
    "read": _read,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 64
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"mailproto: unknown command {args[0]!r}\n{USAGE}", end="", file=sys.stderr)
        return 64
    return command(args[1:])
