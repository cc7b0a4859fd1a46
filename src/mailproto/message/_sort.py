"""SORT (RFC 5256) and the base subject that SORT and THREAD share.

- `base_subject` is the extraction algorithm of RFC 5256 section 2.1, steps 1-7 (encoded
  words decoded, white space runs collapsed, "(fwd)" trailers, "Re:"/"Fw:"/"Fwd:"
  leaders with their "[blob]"s, leading blobs and the "[fwd: ...]" wrapper removed),
  and it says whether the subject marked a reply or a forward (section 3, REFERENCES
  step 5). Blob characters may be any but "[" and "]", non-ASCII included, as Dovecot
  reads them.
- `sort` orders messages by a list of criteria (section 3): ARRIVAL (INTERNALDATE), CC,
  FROM, TO (the addr-mailbox of the first address in the ENVELOPE sense: a group's
  name when the field starts with a group, as Dovecot sorts; the empty string when
  there is none), DATE (the sent date of section 2.2: the Date: header, or
  INTERNALDATE when it is missing or unparseable, compared as instants), SIZE
  (RFC822.SIZE), SUBJECT (the base subject), and from RFC 5957 DISPLAYFROM and
  DISPLAYTO (the decoded display name of the first address, else its addr-spec, else
  a group's name). REVERSE applies to its own criterion only; messages equal under
  every criterion keep sequence order. Strings compare with i;ascii-casemap (ASCII
  letters case-insensitively, other characters by code point, which is UTF-8 octet
  order); DISPLAY* use full Unicode case folding, closer to the i;unicode-casemap
  that RFC 5957 asks for.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Sequence

from ..imap._commands import SortCriterion
from ..imap._responses import Address
from ._address import parse_addresses
from ._search import Loaded, MessageInfo
from ._words import decode_header, fold

__all__ = ["base_subject", "sort"]

_SPACES = re.compile(r"[ \t\r\n]+")
# subj-leader = (*subj-blob subj-refwd) / WSP ; subj-refwd = ("re" / ("fw" ["d"])) *WSP
# [subj-blob] ":" ; subj-blob = "[" *BLOBCHAR "]" *WSP. After step 1 WSP is one space.
_REFWD = re.compile(r"(?:\[[^\[\]]*\] ?)*(?:re|fwd?) ?(?:\[[^\[\]]*\] ?)?:", re.IGNORECASE)
_BLOB = re.compile(r"\[[^\[\]]*\] ?")
_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}


def ascii_casemap(text: str) -> str:
    """The i;ascii-casemap comparison key (RFC 4790 9.2): a-z as A-Z, nothing else."""
    return text.translate(_UPPER)


def base_subject(subject: bytes | str) -> tuple[str, bool]:
    """``(base subject, is a reply or forward)`` of a Subject: value (RFC 5256 2.1).

    ``subject`` is the raw field value (encoded words are decoded here) or text already
    decoded. Linear in the length of the subject.
    """
    text = decode_header(subject) if isinstance(subject, bytes) else subject
    s = _SPACES.sub(" ", text)  # step 1
    lower = s.lower()
    start, end = 0, len(s)
    is_reply = False
    while True:
        # (2) trailing "(fwd)" and WSP
        while end > start:
            if s[end - 1] == " ":
                end -= 1
            elif end - start >= 5 and lower.startswith("(fwd)", end - 5, end):
                end -= 5
                is_reply = True
            else:
                break
        # (3) leaders, (4) blobs, (5) until neither matches
        while True:
            if start < end and s[start] == " ":
                start += 1
                continue
            m = _REFWD.match(s, start, end)
            if m is not None:
                start = m.end()
                is_reply = True
                continue
            moved = False
            while (b := _BLOB.match(s, start, end)) is not None and b.end() < end:
                start = b.end()
                moved = True
            if not moved:
                break
        # (6) "[fwd:" ... "]"
        if end - start >= 6 and lower.startswith("[fwd:", start, end) and s[end - 1] == "]":
            start += 5
            end -= 1
            is_reply = True
            continue
        return s[start:end], is_reply


# --- sort keys ----------------------------------------------------------------------


def _instant(when: datetime.datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def sent_instant(m: Loaded) -> float:
    """The sent date of RFC 5256 2.2 as a POSIX time: Date:, else INTERNALDATE."""
    sent = m.sent()
    return _instant(m.info.internal_date if sent is None else sent)


def _first_address(m: Loaded, field: bytes) -> Address | None:
    raw = m.raw_header(field)
    if raw is None:
        return None
    addresses = parse_addresses(raw)
    return addresses[0] if addresses else None


def _mailbox_key(field: bytes) -> Callable[[Loaded], str]:
    def key(m: Loaded) -> str:
        address = _first_address(m, field)
        if address is None or address.mailbox is None:
            return ""
        return ascii_casemap(decode_header(address.mailbox))

    return key


def _display_key(field: bytes) -> Callable[[Loaded], str]:
    def key(m: Loaded) -> str:
        address = _first_address(m, field)
        if address is None:
            return ""
        if address.name:
            text = address.name
        elif address.host is not None:
            text = (address.mailbox or b"") + b"@" + address.host
        else:
            text = address.mailbox or b""  # a group: its name
        return fold(decode_header(text))

    return key


def _subject_key(m: Loaded) -> str:
    raw = m.raw_header(b"subject")
    return "" if raw is None else ascii_casemap(base_subject(raw)[0])


_KEYS: dict[str, Callable[[Loaded], str | float | int]] = {
    "ARRIVAL": lambda m: _instant(m.info.internal_date),
    "CC": _mailbox_key(b"cc"),
    "DATE": sent_instant,
    "FROM": _mailbox_key(b"from"),
    "SIZE": lambda m: m.info.size,
    "SUBJECT": _subject_key,
    "TO": _mailbox_key(b"to"),
    "DISPLAYFROM": _display_key(b"from"),
    "DISPLAYTO": _display_key(b"to"),
}


def sort(
    criteria: Sequence[SortCriterion],
    messages: Sequence[MessageInfo],
    *,
    uid: bool = False,
) -> list[int]:
    """SORT (UID SORT with ``uid``): sequence numbers or UIDs of ``messages`` in order.

    ``messages`` are the ones the search program selected (`search_messages`). Each
    message is loaded at most once, and only when a criterion reads its header.
    """
    loaded = [Loaded(m) for m in messages]
    order = sorted(range(len(loaded)), key=lambda i: loaded[i].info.seq)
    # Stable sorts from the last criterion to the first: the first decides, the later
    # ones break its ties, sequence order breaks the rest (reverse=True keeps ties).
    for criterion in reversed(criteria):
        key = _KEYS[criterion.key]
        values = [key(m) for m in loaded]
        order.sort(key=values.__getitem__, reverse=criterion.reverse)
    return [loaded[i].info.uid if uid else loaded[i].info.seq for i in order]
