"""COMPRESS=DEFLATE (RFC 4978) for the IMAP server: the stream layer under the protocol.

After the tagged OK to ``COMPRESS DEFLATE`` every octet, both ways, is one raw DEFLATE
stream per direction (RFC 1951, no zlib header or trailer: ``wbits=-15``, RFC 4978
section 3). Each write ends with a sync flush, so that the peer can decompress all of
it at once (section 4).

- `Deflate`: the two zlib streams of one connection. `Deflate.inflate` never returns
  more than ``max_output`` octets per call: the input it has not used yet stays in
  zlib's unconsumed tail and is decompressed by the next calls, before any more is
  read from the network. A deflate bomb (a few KiB that expand to gigabytes) thus
  costs at most ``max_output`` octets at a time, and the protocol's own limits (line
  and literal sizes) refuse what it expands to, piece by piece.
- `compressing`: wraps a session flow (a generator of `_effects` requests): once the
  `Deflate` is started, each `Send` is compressed and each `Receive` result
  decompressed; the flow itself does not change. The session starts it right after
  sending the tagged OK, so that reply is the last uncompressed octets.
- `compress_reply`: the COMPRESS command's answer: OK for DEFLATE,
  ``NO [COMPRESSIONACTIVE]`` when compression is already on (section 3), BAD for any
  other mechanism.
"""

from __future__ import annotations

import zlib
from collections.abc import Generator
from typing import Any, TypeVar

from mailproto.imap import responses as r

from .._effects import Receive, Send
from .._transport import TransportError

__all__ = ["CompressionError", "Deflate", "compress_reply", "compressing"]

T = TypeVar("T")

MAX_OUTPUT = 65536  # the most octets one `Deflate.inflate` call hands to the protocol


class CompressionError(TransportError):
    """The peer's DEFLATE stream is corrupt, or ended (the connection cannot go on)."""


class Deflate:
    """The compression state of one connection: inactive until `start`."""

    def __init__(self, *, max_output: int = MAX_OUTPUT, level: int = 6) -> None:
        if max_output < 1:
            raise ValueError("max_output must be at least 1")
        self.max_output = max_output
        self.level = level
        self._compressor: Any = None
        self._decompressor: Any = None
        self._more = False  # the last inflate stopped at max_output: output may be left

    @property
    def active(self) -> bool:
        """Whether COMPRESS DEFLATE is in effect."""
        return self._compressor is not None

    def start(self) -> None:
        """Compress from now on (after the tagged OK to COMPRESS went out)."""
        if self.active:
            raise RuntimeError("compression is already active")
        # Our side uses a 4 KiB window and memLevel 6: about 48 KiB instead of zlib's
        # default 256 KiB (RFC 4978 section 4 allows less memory at some cost in ratio);
        # reading the peer's stream needs its full 32 KiB window.
        self._compressor = zlib.compressobj(self.level, zlib.DEFLATED, -12, 6)
        self._decompressor = zlib.decompressobj(-15)

    def deflate(self, data: bytes) -> bytes:
        """``data`` compressed and sync-flushed: the peer can read all of it now."""
        c = self._compressor
        return bytes(c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))

    @property
    def pending(self) -> bool:
        """Whether decompressed octets may be waiting without reading the network."""
        return self._more

    def inflate(self, data: bytes = b"", limit: int | None = None) -> bytes:
        """Up to ``max_output`` octets (or ``limit``, if lower) of what the peer sent.

        Pass the octets just received, or nothing to go on with what earlier calls
        left (while `pending`); what is left is always used first. May return ``b""``
        when ``data`` ends inside a block.
        Raises `CompressionError` for a corrupt stream or one that ends (a final block:
        RFC 4978 has no way to stop compressing but closing the connection).
        """
        d = self._decompressor
        tail = d.unconsumed_tail  # at most one Receive's worth: cheap to join
        try:
            most = self.max_output if limit is None else max(1, min(limit, self.max_output))
            out = d.decompress(tail + data if tail else data, most)
        except zlib.error as exc:
            raise CompressionError(f"bad DEFLATE data: {exc}") from None
        if d.eof:
            raise CompressionError("the peer ended its DEFLATE stream")
        self._more = bool(d.unconsumed_tail) or len(out) == most
        return bytes(out)


def compress_reply(tag: str, mechanism: str, stream: Deflate) -> r.Tagged:
    """The tagged answer to ``COMPRESS mechanism``; OK means: start after sending it."""
    if stream.active:
        return r.Tagged(
            tag=tag,
            status="NO",
            code=r.OtherCode(name="COMPRESSIONACTIVE"),
            text="DEFLATE active via COMPRESS",
        )
    if mechanism.upper() != "DEFLATE":
        return r.Tagged(tag=tag, status="BAD", text=f"Unknown compression: {mechanism}"[:100])
    return r.Tagged(tag=tag, status="OK", text="DEFLATE active")


def compressing(flow: Generator[Any, Any, T], stream: Deflate) -> Generator[Any, Any, T]:
    """``flow`` with its `Send` and `Receive` effects compressed while ``stream`` is on.

    Every other effect, result and exception passes through unchanged; closing this
    generator closes ``flow``.
    """
    value: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value, error = None, None
            if not stream.active:
                try:
                    value = yield effect
                except Exception as exc:  # handed to the flow, as a driver does
                    error = exc
                continue
            try:
                if isinstance(effect, Send):
                    value = yield Send(stream.deflate(effect.data), effect.timeout)
                elif isinstance(effect, Receive):
                    value = yield from _receive(effect, stream)
                else:
                    value = yield effect
            except Exception as exc:
                error = exc
    finally:
        flow.close()


def _receive(effect: Receive, stream: Deflate) -> Generator[Any, Any, bytes]:
    """Decompressed octets for one `Receive` (``b""`` when the peer closed)."""
    if stream.pending:
        out = stream.inflate(b"", effect.max_bytes)
        if out:
            return out
    while True:  # a sync-flushed write always yields octets; a partial one may not
        raw = yield Receive(effect.timeout, effect.max_bytes)
        if not raw:
            return b""
        out = stream.inflate(raw, effect.max_bytes)
        if out:
            return out
