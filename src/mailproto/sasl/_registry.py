"""Server mechanisms by name, as a protocol layer meets them in ``AUTH <name>``."""

from __future__ import annotations

from collections.abc import Callable

from ._base import ServerMechanism
from ._cram import CramMD5Server
from ._oauth import OAuthBearerServer, XOAuth2Server
from ._plain import LoginServer, PlainServer
from ._scram import ScramSha256Server

__all__ = ["SERVER_MECHANISMS", "server_mechanism"]

# name -> factory(hostname, nonce). Mechanisms that take no nonce or hostname ignore them.
_FACTORIES: dict[str, Callable[[str, bytes | None], ServerMechanism]] = {
    "PLAIN": lambda hostname, nonce: PlainServer(),
    "LOGIN": lambda hostname, nonce: LoginServer(),
    "CRAM-MD5": lambda hostname, nonce: CramMD5Server(hostname=hostname, nonce=nonce),
    "SCRAM-SHA-256": lambda hostname, nonce: ScramSha256Server(nonce=nonce),
    "XOAUTH2": lambda hostname, nonce: XOAuth2Server(),
    "OAUTHBEARER": lambda hostname, nonce: OAuthBearerServer(),
}

SERVER_MECHANISMS: tuple[str, ...] = tuple(_FACTORIES)
"""Names `server_mechanism` accepts, in their canonical (upper) case."""


def server_mechanism(
    name: str, *, hostname: str = "localhost", nonce: bytes | None = None
) -> ServerMechanism:
    """A fresh server mechanism for one exchange.

    Args:
        name: the mechanism as the client wrote it; SASL names are case-insensitive
            (compared in ASCII only, so no Unicode case folding sneaks in).
        hostname: used by CRAM-MD5's challenge ``<random@hostname>``.
        nonce: replaces the random part of the challenge: CRAM-MD5's ``digits.digits``,
            SCRAM's server nonce. For tests; leave it ``None`` in production.

    Raises:
        ValueError: unknown mechanism, or a hostname/nonce the mechanism cannot use.

    Construct `ScramSha256Server` directly to pass a server-wide ``fake_salt_key``.
    """
    factory = _FACTORIES.get(name.upper()) if name.isascii() else None
    if factory is None:
        raise ValueError(f"unsupported SASL mechanism {name!r}")
    return factory(hostname, nonce)
