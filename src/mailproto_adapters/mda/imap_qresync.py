"""QRESYNC answers for the IMAP server (RFC 7162 section 3.2), without protocol state.

The session (`mailproto_adapters.mda.imap`) calls these to build the responses a
resynchronising client gets; they only look at UIDs, MODSEQs and the store's record of
expunged UIDs (`Mailbox.changes_since`), which is kept for good, so the optional
"message sequence match data" of the QRESYNC parameter (3.2.5.2, a help for servers
that forget expunges) is never needed.

- `select_resync`: SELECT/EXAMINE with ``(QRESYNC (uidvalidity modseq [known-uids]))``
  (3.2.5): the known UIDs expunged after ``modseq`` (``VANISHED (EARLIER)``) and the
  messages changed after it (``FETCH (UID FLAGS MODSEQ)``); nothing when UIDVALIDITY
  differs (3.2.5.1: the client must then resynchronise fully).
- `vanished_earlier`: the ``VANISHED (EARLIER)`` of ``UID FETCH ... (CHANGEDSINCE n
  VANISHED)`` (3.2.6): UIDs of the set expunged after ``n``.
- `vanished`: a ``VANISHED`` response for a list of UIDs (3.2.10), or None when empty.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Sequence

from mailproto.imap import SequenceSet
from mailproto.imap import commands as c
from mailproto.imap import responses as r

from .store import Mailbox

__all__ = ["select_resync", "uids_in", "vanished", "vanished_earlier"]


def uids_in(uids: Sequence[int], sequence_set: SequenceSet | None, largest: int) -> list[int]:
    """The members of ``uids`` (ascending) inside the UID set (all when it is None).

    The cost is in the number of ranges of the set and of UIDs kept, not in the size of
    the ranges: "1:4294967295" is cheap.
    """
    if sequence_set is None:
        return list(uids)
    out: list[int] = []
    for a, b in sequence_set.normalized(largest):
        lo = bisect.bisect_left(uids, a)
        hi = bisect.bisect_right(uids, b)
        out.extend(uids[lo:hi])
    return out


def vanished(uids: Iterable[int], earlier: bool = False) -> r.Vanished | None:
    """``* VANISHED [(EARLIER)] uids`` in compact ranges; None when there are none."""
    numbers = sorted(set(uids))
    if not numbers:
        return None
    return r.Vanished(earlier=earlier, uids=SequenceSet.of(*numbers))


def select_resync(
    box: Mailbox, param: c.QResync, uidnext: int, in_view: Collection[int]
) -> list[int]:
    """The UIDs for SELECT's ``VANISHED (EARLIER)`` (run in a worker thread).

    Those expunged after ``param.modseq``, among the known UIDs when given (3.2.5),
    never one still in the session's view. The caller checks UIDVALIDITY first.
    """
    gone = sorted(u for u in box.changes_since(param.modseq).expunged if u not in in_view)
    return uids_in(gone, param.known_uids, uidnext - 1)


def vanished_earlier(
    box: Mailbox,
    changedsince: int,
    sequence_set: SequenceSet,
    largest: int,
    in_view: Collection[int],
) -> list[int]:
    """UIDs of ``sequence_set`` expunged after ``changedsince`` (UID FETCH VANISHED).

    UIDs still in the session's view are left out: their own ``VANISHED`` comes with
    the session's next untagged updates, and a client must not hear of them twice.
    """
    gone = sorted(u for u in box.changes_since(changedsince).expunged if u not in in_view)
    return uids_in(gone, sequence_set, largest)
