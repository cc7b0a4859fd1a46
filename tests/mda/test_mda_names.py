"""Mailbox names: canonical spelling, the on-disk encoding, and hostile names."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from mailproto_adapters.mda.maildir import MaildirStore
from mailproto_adapters.mda.names import (
    INBOX,
    InvalidMailboxName,
    InvalidUserName,
    dirname_to_name,
    mailbox_dirname,
    mailbox_path,
    normalize_name,
    user_dirname,
)
from mailproto_adapters.mda.store import StoreError


@pytest.mark.parametrize("name", ["INBOX", "inbox", "Inbox", "iNbOx"])
def test_inbox_is_case_insensitive(name: str) -> None:
    assert normalize_name(name) == INBOX
    assert mailbox_dirname(normalize_name(name)) == ""


def test_inbox_prefix_is_canonical_and_other_names_keep_case() -> None:
    assert normalize_name("inbox/Sub") == "INBOX/Sub"
    assert normalize_name("Work") == "Work"
    assert normalize_name("work") == "work"
    assert normalize_name("INBOXES") == "INBOXES"


@pytest.mark.parametrize(
    ("name", "dirname"),
    [
        ("Sent", ".Sent"),
        ("Work/2024", ".Work.2024"),
        ("a.b", ".a\\2eb"),
        ("back\\slash", ".back\\5cslash"),
        ("~home", ".\\7ehome"),
        ("a~b", ".a~b"),
        ("Café", ".Caf&AOk-"),
        ("R&D", ".R&-D"),
        ("日本語/メール", ".&ZeVnLIqe-.&MOEw,DDr-"),
        ("Sent Messages", ".Sent Messages"),
        ("INBOX/Sub", ".INBOX.Sub"),
    ],
)
def test_dovecot_maildirpp_encoding_round_trips(name: str, dirname: str) -> None:
    assert mailbox_dirname(name) == dirname
    assert dirname.isascii()
    assert "/" not in dirname
    assert ".." not in dirname
    assert dirname_to_name(dirname) == name


# At least 20 crafted names: each is refused, or lands inside the user's directory.
HOSTILE = [
    "..",
    ".",
    "../bob",
    "../../etc/passwd",
    "/etc/passwd",
    "/",
    "//",
    "a//b",
    "a/",
    "/a",
    "a/../../b",
    "a/./b",
    "INBOX/../../bob",
    "foo\x00bar",
    "\x00",
    "new\nline",
    "tab\there",
    "del\x7f",
    "c1\x85",
    "esc\x1b[31m",
    "..foo",
    "...",
    ".hidden",
    "~root",
    "~/x",
    "a.b.c",
    "../",
    "..\\..\\bob",
    "cur",
    "tmp",
    "new",
    "x" * 300,
    "é" * 100,
    "/".join(["d"] * 40),
    "*",
    "%",
    "lone\ud800surrogate",
    "",
    "INBOX/..",
    "INBOX/.",
    ".Sent",
    "a\u2215b",  # DIVISION SLASH looks like / but is not one
    "mailproto.sqlite",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_or_contained(name: str, tmp_path: Path) -> None:
    root = tmp_path / "users" / "alice"
    root.mkdir(parents=True)
    real_root = os.path.realpath(root)
    try:
        path = mailbox_path(str(root), name)
    except InvalidMailboxName:
        return
    real = os.path.realpath(path)
    assert real == real_root or os.path.dirname(real) == real_root
    if real != real_root:
        base = os.path.basename(real)
        assert base.startswith(".")
        assert not base.startswith("..")
        assert dirname_to_name(base) == normalize_name(name)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_through_the_store(name: str, tmp_path: Path) -> None:
    store = MaildirStore(tmp_path / "mail")
    alice = store.user("alice")
    store.user("bob").deliver(b"Subject: secret\r\n\r\nbob's\r\n")
    before = sorted(os.listdir(tmp_path / "mail"))
    with contextlib.suppress(StoreError, ValueError):
        alice.create(name)
    # Nothing appeared outside alice's directory, and bob's INBOX is untouched.
    assert sorted(os.listdir(tmp_path / "mail")) == before
    for dirpath, _dirs, _files in os.walk(tmp_path / "mail"):
        real = os.path.realpath(dirpath)
        assert real.startswith(os.path.realpath(tmp_path / "mail"))
    assert len(store.user("bob").mailbox("INBOX").snapshot()) == 1
    for info in alice.list():
        assert normalize_name(info.name) == info.name
    with pytest.raises((StoreError, ValueError)):
        alice.mailbox("../bob")


@pytest.mark.parametrize(
    "name", ["", ".", "..", ".alice", "a/b", "../bob", "a\x00", "a\nb", "a\\b", "x" * 300]
)
def test_bad_user_names(name: str) -> None:
    with pytest.raises(InvalidUserName):
        user_dirname(name)


def test_good_user_names() -> None:
    assert user_dirname("alice") == "alice"
    assert user_dirname("alice@example.com") == "alice@example.com"


@pytest.mark.parametrize(
    "dirname",
    ["", ".", "..", "...", "..mailproto-deleted-1", ".a..b", ".&Jjo", ".&AGE-", ".x.", "cur"],
)
def test_foreign_directories_that_are_not_mailboxes(dirname: str) -> None:
    assert dirname_to_name(dirname) is None


def test_dovecot_spelling_of_inbox_children() -> None:
    assert dirname_to_name(".INBOX.x") == "INBOX/x"
    assert dirname_to_name(".inbox.x") is None  # not a spelling we write: skipped


def test_long_names_are_refused_before_the_file_system_does() -> None:
    with pytest.raises(InvalidMailboxName):
        normalize_name("a" * 255)
    assert normalize_name("a" * 254) == "a" * 254
