"""``mailproto user add|passwd|del|list``: manage the MDA's users file.

Passwords come from a prompt (asked twice, not echoed) or, with ``--password-stdin``,
from the first line of standard input, never from the command line where ``ps`` and the
shell history would show them. Errors go to stderr as ``mailproto user: error: ...``
and the exit status follows sysexits.h, as Dovecot's doveadm does: 64 usage, 65 bad
input, 67 unknown user, 73 user already exists, 74 I/O error, 78 broken users file.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from .users import (
    DEFAULT_USERS_FILE,
    UnknownUserError,
    UserDB,
    UserExistsError,
    UsersFileError,
    validate_name,
    validate_password,
)

__all__ = ["main"]

PROG = "mailproto user"
EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOUSER = 67
EX_CANTCREAT = 73
EX_IOERR = 74
EX_CONFIG = 78


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors to `main` instead of exiting with status 2."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.format_usage().rstrip()}\n{self.prog}: error: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Manage the MDA's users file.")
    users_help = f"the users file (default: ./{DEFAULT_USERS_FILE})"
    parser.add_argument("--users", metavar="FILE", default=str(DEFAULT_USERS_FILE), help=users_help)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    # --users is also accepted after the subcommand; SUPPRESS keeps the main default.
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--users", metavar="FILE", default=argparse.SUPPRESS, help=users_help)

    add = sub.add_parser("add", help="create a user")
    add.add_argument("name")
    add.add_argument("--quota", type=int, metavar="OCTETS", help="storage quota in octets")
    add.add_argument(
        "--apop",
        action="store_true",
        help="allow POP3 APOP (stores the password itself in the users file)",
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    common(add)

    passwd = sub.add_parser("passwd", help="change a user's password")
    passwd.add_argument("name")
    apop = passwd.add_mutually_exclusive_group()
    apop.add_argument("--apop", dest="apop", action="store_true", default=None)
    apop.add_argument("--no-apop", dest="apop", action="store_false")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    common(passwd)

    delete = sub.add_parser("del", help="delete a user (their mail is kept)")
    delete.add_argument("name")
    common(delete)

    listing = sub.add_parser("list", help="list users, one per line")
    common(listing)
    return parser


def _read_password(from_stdin: bool, stdin: TextIO) -> str:
    """One line of stdin, or a prompt twice. ValueError for a mismatch or an empty one."""
    if from_stdin:
        line = stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Retype new password: ") != password:
            raise ValueError("passwords do not match")
    validate_password(password)
    return password


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``user`` subcommand; returns the exit status. ``argv`` may start with
    the word ``user`` (as ``mailproto user ...`` passes it) or directly with the action."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["user"]:
        args_list = args_list[1:]
    try:
        args = _parser().parse_args(args_list)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EX_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    return _run(args)


def _error(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command != "list":
            validate_name(args.name)
        if args.command == "add" and args.quota is not None and args.quota < 0:
            return _error("--quota must be a non-negative number of octets", EX_USAGE)
        db = UserDB(args.users)
        if args.command == "list":
            for user in db.list():
                extras = [f"quota={user.quota}"] if user.quota is not None else []
                extras += ["apop"] if user.apop else []
                extras += [] if user.enabled else ["disabled"]
                print(" ".join([user.name, *extras]))
            return EX_OK
        if args.command == "del":
            db.delete(args.name)
            print(f"{PROG}: deleted {validate_name(args.name)}", file=sys.stderr)
            return EX_OK
        if args.command == "add" and args.name in db:
            # Checked before the prompt too, so nobody types a password for nothing.
            return _error(f"user {validate_name(args.name)!r} already exists", EX_CANTCREAT)
        if args.command == "passwd" and args.name not in db:
            return _error(f"unknown user {validate_name(args.name)!r}", EX_NOUSER)
        password = _read_password(args.password_stdin, sys.stdin)
        if args.command == "add":
            user = db.add(args.name, password, apop=args.apop, quota=args.quota)
            print(f"{PROG}: added {user.name}", file=sys.stderr)
        else:
            user = db.set_password(args.name, password, apop=args.apop)
            print(f"{PROG}: password changed for {user.name}", file=sys.stderr)
        return EX_OK
    except UserExistsError as exc:
        return _error(str(exc), EX_CANTCREAT)
    except UnknownUserError as exc:
        return _error(str(exc), EX_NOUSER)
    except UsersFileError as exc:
        return _error(f"{args.users}: {exc}", EX_CONFIG)
    except (ValueError, EOFError) as exc:
        return _error(str(exc) or "no password given", EX_DATAERR)
    except KeyboardInterrupt:
        return _error("interrupted", EX_DATAERR)
    except OSError as exc:
        return _error(f"{exc.filename or args.users}: {exc.strerror or exc}", EX_IOERR)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
