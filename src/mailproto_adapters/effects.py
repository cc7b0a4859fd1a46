"""The effects a session flow yields, for writing flows of your own (public names).

A server session is ``session(info) -> Op[None]``: a generator that yields `Receive`,
`Send`, `StartTLS`, `Close`, `Call` and `Info` and gets their results back; any flavour's
``serve()`` runs it (docs/adapters.md, docs/tutorial.md). The classes live in
`mailproto_adapters._effects` with the drivers that perform them.
"""

from __future__ import annotations

from ._effects import (
    Call,
    Close,
    Effect,
    Info,
    Op,
    Receive,
    Send,
    StartTLS,
    TLSInfo,
    TransportInfo,
)

__all__ = [
    "Call",
    "Close",
    "Effect",
    "Info",
    "Op",
    "Receive",
    "Send",
    "StartTLS",
    "TLSInfo",
    "TransportInfo",
]
