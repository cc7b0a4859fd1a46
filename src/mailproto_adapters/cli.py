"""The ``mailproto`` command (also ``python -m mailproto_adapters``).

One entry point, one sub-command per component: today ``user`` (manage the MDA's users
file: see docs/mda-users.md). ``serve``, ``queue``, ``send`` and ``fetch`` come with the
components they drive.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["main"]

USAGE = """usage: mailproto COMMAND [ARGS...]

commands:
  user add|passwd|del|list ...   manage the users file (mailproto user --help)
"""


def _user(argv: list[str]) -> int:
    from .mda import users_cli

    return users_cli.main(["user", *argv])


COMMANDS: dict[str, Callable[[list[str]], int]] = {"user": _user}


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
