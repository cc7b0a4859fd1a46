"""Mailbox and user names: what IMAP may ask for, and where it lives on disk.

IMAP names use "/" as the hierarchy delimiter; INBOX is case-insensitive (RFC 3501 5.1,
RFC 9051 5.1), so "inbox" and "Inbox/Sub" are spelt "INBOX" and "INBOX/Sub" here.

On disk a folder is a Maildir++ directory in the user's Maildir: INBOX is the Maildir
itself, "Work/2024" is ``.Work.2024``. Each segment is written as Dovecot writes it with
the listescape convention and ``mailbox_list_utf8=no``: "." (the on-disk separator),
"\\" (the escape character) and a leading "~" become ``\\2e``, ``\\5c`` and ``\\7e``,
then the segment is written in modified UTF-7 (RFC 3501 5.1.3), so that non-ASCII
names are plain ASCII on disk. No encoded segment holds "." or "/", so a directory
name can never be ".", "..", a path, or a name that starts with "..".

Refused outright (`InvalidMailboxName`): empty names and segments ("a//b", "/a",
"a/"), the segments "." and "..", NUL and every control character (C0, DEL, C1), lone
surrogates, the LIST wildcards "*" and "%", and names whose directory would exceed the
file system's 255-octet limit or that nest deeper than `MAX_DEPTH`.
"""

from __future__ import annotations

import os
import re

from mailproto import mutf7

__all__ = [
    "INBOX",
    "MAX_DEPTH",
    "MAX_DIRNAME",
    "InvalidMailboxName",
    "InvalidUserName",
    "decode_segment",
    "dirname_to_name",
    "encode_segment",
    "mailbox_dirname",
    "mailbox_path",
    "normalize_name",
    "parent_names",
    "user_dirname",
]

INBOX = "INBOX"
DELIMITER = "/"
MAX_DEPTH = 32
MAX_DIRNAME = 255  # NAME_MAX of every common file system

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f*%]")
_ESCAPE = re.compile(r"\\([0-9a-f]{2})")
_USER_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f/\\]")


class InvalidMailboxName(ValueError):
    """The name is not one we store: IMAP answers NO (or BAD for a syntax error)."""


class InvalidUserName(ValueError):
    """A user name that cannot safely name a directory."""


def normalize_name(name: str) -> str:
    """The canonical spelling of an IMAP mailbox name, or `InvalidMailboxName`.

    Canonical means INBOX (alone or as the first segment) in capitals; everything else
    is kept as given, since IMAP names other than INBOX are case-sensitive.
    """
    if not isinstance(name, str) or not name:
        raise InvalidMailboxName("empty mailbox name")
    m = _FORBIDDEN.search(name)
    if m is not None:
        raise InvalidMailboxName(f"character {m.group()!r} not allowed in a mailbox name")
    segments = name.split(DELIMITER)
    if len(segments) > MAX_DEPTH:
        raise InvalidMailboxName("mailbox hierarchy too deep")
    for seg in segments:
        if seg == "":
            raise InvalidMailboxName("empty hierarchy level (leading, trailing or double /)")
        if seg in (".", ".."):
            raise InvalidMailboxName("'.' and '..' are not mailbox names")
    if segments[0].upper() == INBOX:
        segments[0] = INBOX
    canonical = DELIMITER.join(segments)
    mailbox_dirname(canonical)  # raises when too long or not encodable
    return canonical


def encode_segment(segment: str) -> str:
    """One hierarchy level as written on disk (escapes, then modified UTF-7)."""
    out = segment.replace("\\", "\\5c").replace(".", "\\2e")
    if out.startswith("~"):
        out = "\\7e" + out[1:]
    try:
        return mutf7.encode(out).decode("ascii")
    except ValueError as exc:
        raise InvalidMailboxName(str(exc)) from None


def decode_segment(segment: str) -> str:
    """The inverse of `encode_segment`; `ValueError` for what we would not have written."""
    text = mutf7.decode(segment.encode("ascii"))
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def mailbox_dirname(name: str) -> str:
    """The Maildir++ directory name of a canonical mailbox name ("" for INBOX)."""
    if name == INBOX:
        return ""
    dirname = "." + ".".join(encode_segment(s) for s in name.split(DELIMITER))
    if len(dirname.encode("ascii")) > MAX_DIRNAME:
        raise InvalidMailboxName("mailbox name too long")
    return dirname


def mailbox_path(user_root: str, name: str, *, resolved: bool = False) -> str:
    """The folder directory of ``name`` under ``user_root``, checked to stay inside it:
    a resolved path (no symbolic link in it). ``resolved``: ``user_root`` is one already
    (the caller resolved it once: each resolution is an lstat per path component).

    The check is redundant with the encoding; it is kept so that a future change to the
    encoding cannot open a path traversal silently.
    """
    canonical = normalize_name(name)
    dirname = mailbox_dirname(canonical)
    root = user_root if resolved else os.path.realpath(user_root)
    if not dirname:  # INBOX: the user's directory itself
        return root
    path = os.path.join(root, dirname)
    real = os.path.realpath(path)
    if os.path.dirname(real) != root or os.path.basename(real) != dirname:
        raise InvalidMailboxName("mailbox name escapes the user's directory")
    return path


def dirname_to_name(dirname: str) -> str | None:
    """The mailbox name of a Maildir++ directory, or None when it is not one of ours.

    Directories other programs made are read the same way (Dovecot writes them so);
    those that do not decode, or that decode to a name we would refuse, are skipped.
    """
    if len(dirname) < 2 or dirname[0] != "." or dirname[1] == ".":
        return None
    try:
        name = DELIMITER.join(decode_segment(s) for s in dirname[1:].split("."))
        canonical = normalize_name(name)
    except ValueError:
        return None
    if canonical == INBOX or mailbox_dirname(canonical) != dirname:
        return None
    return canonical


def parent_names(name: str) -> list[str]:
    """The superior names of a canonical name, outermost first ("a/b/c" -> a, a/b)."""
    segments = name.split(DELIMITER)
    return [DELIMITER.join(segments[:i]) for i in range(1, len(segments))]


def user_dirname(user: str) -> str:
    """The directory name of a user's Maildir: the name itself, once checked.

    User names come from the users file, but a store should not trust its callers with
    paths: "/", "\\", NUL, controls, a leading "." and over-long names are refused.
    """
    if not isinstance(user, str) or not user or user.startswith("."):
        raise InvalidUserName(f"invalid user name {user!r}")
    if _USER_FORBIDDEN.search(user) or len(user.encode("utf-8", "surrogatepass")) > 200:
        raise InvalidUserName(f"invalid user name {user!r}")
    try:
        user.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidUserName(f"invalid user name {user!r}") from None
    return user
