"""When a client upgrades to TLS: one rule for SMTP STARTTLS, POP3 STLS, IMAP STARTTLS."""

from __future__ import annotations

import ssl

__all__ = ["tls_context", "upgrade_context"]


def tls_context(value: ssl.SSLContext | bool | None) -> ssl.SSLContext | None:
    """True means the default context; False and None, none."""
    if value is True:
        return ssl.create_default_context()
    return value or None


def upgrade_context(
    setting: ssl.SSLContext | bool | None, *, secure: bool, offered: bool
) -> ssl.SSLContext | None:
    """The context to upgrade with now, or None.

    ``setting``: True or a context requires the upgrade, False never, None when
    ``offered``. ``secure``: TLS is up already (implicit TLS, or an earlier upgrade).
    """
    if secure:
        return None
    if setting is None:
        return ssl.create_default_context() if offered else None
    return tls_context(setting)
