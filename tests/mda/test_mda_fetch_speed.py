"""FETCH ENVELOPE's fast path: envelopes decoded alone give what the full decode gives.

`MaildirMailbox.envelopes_many` reads only the envelope of each cache entry
(`_load_envelope`), and `imap_data.fetch_many` uses it when ENVELOPE is the only cached
item asked; these tests pin that the values are equal to those of `metadata`, and that
a tampered entry falls back to parsing the message.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mailproto.imap.commands import FetchAttr, FetchBody
from mailproto.imap.responses import Address, Envelope
from mailproto_adapters.mda import imap_data, maildir
from mailproto_adapters.mda.maildir import MaildirMailbox, MaildirStore
from mailproto_adapters.mda.store import Mailbox

MESSAGES = (
    b"From: Alice Example <alice@example.com>\r\nTo: bob@example.org, Carol"
    b" <carol@example.net>\r\nCc: d@example.com\r\nBcc: e@example.com\r\n"
    b"Reply-To: list@example.com\r\nSender: s@example.com\r\nSubject: Hello\r\n"
    b"Date: Mon, 4 Mar 2024 10:00:00 +0100\r\nMessage-ID: <1@example.com>\r\n"
    b"In-Reply-To: <0@example.com>\r\n\r\nbody\r\n",
    b"From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\nTo: friends: a@example.com,"
    b' b@example.com;, @route,@other:c@example.com\r\nSubject: caf\xe9 "quoted"\r\n'
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=xx\r\n\r\n"
    b"--xx\r\nContent-Type: text/plain\r\n\r\nhi\r\n--xx\r\n"
    b"Content-Type: message/rfc822\r\n\r\nFrom: inner@example.com\r\nSubject: in\r\n\r\n"
    b"x\r\n--xx--\r\n",
    b"Subject: no addresses at all\r\n\r\n",
    b"\r\njust a body\r\n",
    b'To: undisclosed-recipients:;\r\nFrom: "Last, First" <lf@example.com>\r\n\r\n.\r\n',
)
ENVELOPE_ITEMS = tuple(FetchAttr(name=n) for n in ("FLAGS", "UID", "RFC822.SIZE", "ENVELOPE"))


@pytest.fixture
def box(tmp_path: Path) -> MaildirMailbox:
    user = MaildirStore(tmp_path / "mail").user("alice")
    for message in MESSAGES:
        user.deliver(message)
    return user.mailbox("INBOX")


def _uids(box: MaildirMailbox) -> list[int]:
    return [r.uid for r in box.snapshot()]


def _cache_rows(box: MaildirMailbox) -> dict[int, str]:
    with sqlite3.connect(Path(box.path) / maildir.DB_FILE) as conn:
        return dict(conn.execute("SELECT uid, data FROM cache").fetchall())


def _set_cache(box: MaildirMailbox, uid: int, data: str) -> None:
    f = box._folder
    with f.tlock, f.tx() as conn:
        conn.execute("UPDATE cache SET data=? WHERE uid=?", (data, uid))


def test_envelopes_many_equal_full_decode(box: MaildirMailbox) -> None:
    uids = _uids(box)
    parsed = {uid: box.metadata(uid).envelope for uid in uids}  # computed, then cached
    assert len(_cache_rows(box)) == len(MESSAGES)
    full = {uid: md.envelope for uid, md in box.metadata_many(uids).items()}
    fast = box.envelopes_many(uids)
    assert fast == full == parsed
    assert list(fast) == uids
    assert all(type(e) is Envelope for e in fast.values())
    for env in fast.values():
        for field in ("from_", "sender", "reply_to", "to", "cc", "bcc"):
            value = getattr(env, field)
            assert value is None or all(type(a) is Address for a in value)


def test_load_envelope_equals_decode_of_each_entry(box: MaildirMailbox) -> None:
    box.metadata_many(_uids(box))
    for text in _cache_rows(box).values():
        assert maildir._load_envelope(text) == maildir._load_metadata(text).envelope
        env_json = json.loads(text)[2]
        assert maildir._decode_envelope(env_json) == maildir._decode(env_json)


def test_envelopes_many_misses_parse_and_cache(box: MaildirMailbox) -> None:
    uids = _uids(box)
    assert _cache_rows(box) == {}
    fast = box.envelopes_many([*uids, 999])  # 999: no such message, left out
    assert fast == {uid: box.metadata(uid).envelope for uid in uids}
    assert set(_cache_rows(box)) == set(uids)


def test_base_class_default_matches(box: MaildirMailbox) -> None:
    uids = _uids(box)
    assert Mailbox.envelopes_many(box, uids) == box.envelopes_many(uids)


@pytest.mark.parametrize(
    ("tamper", "full_refuses"),
    [
        (lambda env: env.update(subject="a\x00b"), True),
        (lambda env: env.update(to=[{"_": "Envelope"}]), True),
        (lambda env: env.update(to=[{"_": "Address", "host": "\u0100"}]), True),
        (lambda env: env.update(_="Address"), True),
        (lambda env: env.clear(), True),
        # odd shapes the full decode lets through: the fast path refuses them, and its
        # fallback (the full path) answers as before
        (lambda env: env.update(subject=["x"]), False),
        (lambda env: env.update(subject=7), False),
        (lambda env: env.update(to={"_": "Address", "mailbox": "x"}), False),
        (lambda env: env.update(to=["x@example.com"]), False),
    ],
)
def test_tampered_entry_answers_as_full_path(
    box: MaildirMailbox, tamper: Any, full_refuses: bool
) -> None:
    uid = _uids(box)[0]
    parsed = box.metadata(uid).envelope
    entry = json.loads(_cache_rows(box)[uid])
    tamper(entry[2])
    text = json.dumps(entry, separators=(",", ":"))
    with pytest.raises(Exception):  # noqa: B017 - any error means a miss
        maildir._load_envelope(text)
    _set_cache(box, uid, text)
    fast = box.envelopes_many([uid])
    assert fast == {uid: md.envelope for uid, md in box.metadata_many([uid]).items()}
    if full_refuses:
        assert fast == {uid: parsed}
        assert maildir._load_envelope(_cache_rows(box)[uid]) == parsed  # re-cached


@pytest.mark.parametrize("data", ["", "[]", "not json", '{"a":1}', "[1,2,", "[1,2,null,0,0]"])
def test_garbage_entry_falls_back_to_parse(box: MaildirMailbox, data: str) -> None:
    uid = _uids(box)[1]
    expected = box.metadata(uid).envelope
    _set_cache(box, uid, data)
    assert box.envelopes_many([uid]) == {uid: expected}


def test_fetch_many_envelope_only_skips_body_decode(
    box: MaildirMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = box.snapshot()
    box.metadata_many(r.uid for r in records)
    expected = [
        imap_data.fetch_attributes(box, r, ENVELOPE_ITEMS, uid=True, condstore=True)
        for r in records
    ]
    calls: list[object] = []
    real = maildir._decode

    def counting(value: object) -> Any:
        calls.append(value)
        return real(value)

    monkeypatch.setattr(maildir, "_decode", counting)
    out = list(imap_data.fetch_many(box, records, ENVELOPE_ITEMS, uid=True, condstore=True))
    assert calls == []  # no body structure decoded
    assert [(attrs, seen) for _, attrs, seen in out] == expected
    assert [r for r, _, _ in out] == records


@pytest.mark.parametrize(
    "names",
    [
        ("ENVELOPE", "BODY"),
        ("ENVELOPE", "BODYSTRUCTURE"),
        ("BODYSTRUCTURE",),
        ("ENVELOPE", "ENVELOPE", "INTERNALDATE"),
    ],
)
def test_fetch_many_equals_fetch_attributes(box: MaildirMailbox, names: tuple[Any, ...]) -> None:
    records = box.snapshot()
    items: tuple[Any, ...] = (*(FetchAttr(name=n) for n in names), FetchBody(peek=True))
    expected = [imap_data.fetch_attributes(box, r, items, uid=False) for r in records]
    out = list(imap_data.fetch_many(box, records, items, uid=False))
    assert [(attrs, seen) for _, attrs, seen in out] == expected


def test_fetch_many_skips_expunged(box: MaildirMailbox) -> None:
    records = box.snapshot()
    box.metadata_many(r.uid for r in records)
    box.set_flags([records[0].uid], ["\\Deleted"])
    box.expunge()
    out = list(imap_data.fetch_many(box, records, ENVELOPE_ITEMS, uid=True))
    assert [r.uid for r, _, _ in out] == [r.uid for r in records[1:]]
