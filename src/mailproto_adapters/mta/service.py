"""The MTA as one object: who is local, who may send as whom, and the SMTP listeners.

`MTA` holds what every SMTP session needs (host name, local domains, users, sender
aliases, TLS context, limits, the queue) and hands out the session flows that any
flavour's ``serve()`` runs: `MTA.inbound_session` (port 25), `MTA.submission_session`
(587, STARTTLS) and `MTA.submissions_session` (465, implicit TLS, RFC 8314 section 3.3).
The flows themselves are `mta.smtpd`.

Address rules kept here, so that the listeners and the delivery runner agree:

- A domain is compared in one normal form (`normalize_domain`): one trailing dot
  dropped, IDNA (UTS 46 mapping, then A-labels, RFC 5891) and lower case; an address
  literal (RFC 5321 section 4.1.3) in its canonical IP form. A literal is local only when
  it is listed in ``local_domains`` itself (``"[192.0.2.1]"``).
- A local recipient's user is found by the MDA's own rule
  (`mailproto_adapters.mda.lmtp.resolve_recipient`): the full address if the users file
  has it, else the local part.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs
import idna

from mailproto import smtp

from .._effects import Op, TransportInfo
from ..mda.auth import Authenticator
from ..mda.lmtp import resolve_recipient
from ..mda.users import UserDB, validate_name
from .queue import Queue, QueueEntry

if TYPE_CHECKING:
    from ..mda.service import MDA

__all__ = [
    "INBOUND",
    "MTA",
    "SUBMISSION",
    "SUBMISSIONS",
    "ListenerPolicy",
    "normalize_address",
    "normalize_domain",
]

log = logging.getLogger("mailproto.mta")

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")  # RFC 1035 2.3.1, lower case


@attrs.frozen(kw_only=True)
class ListenerPolicy:
    """What one listener allows: inbound (25) relays for nobody, submission requires
    AUTH. ``allow_plaintext_auth`` offers AUTH before TLS (loopback only)."""

    name: str  # "inbound" | "submission"
    require_auth: bool
    implicit_tls: bool = False
    allow_plaintext_auth: bool = False


INBOUND = ListenerPolicy(name="inbound", require_auth=False)
SUBMISSION = ListenerPolicy(name="submission", require_auth=True)
SUBMISSIONS = ListenerPolicy(name="submission", require_auth=True, implicit_tls=True)


def normalize_domain(domain: str) -> str | None:
    """The one form domains are compared in, or None for what is no usable domain.

    ``Example.ORG.`` -> ``example.org``; ``bücher.example`` -> ``xn--bcher-kva.example``
    (and a valid ``xn--`` form stays itself); ``[IPv6:0::1]`` -> ``[IPv6:::1]``.
    """
    if domain.endswith("."):
        domain = domain[:-1]
    if not domain or domain.endswith(".") or domain.startswith("."):
        return None
    if domain.startswith("["):
        return _normalize_literal(domain)
    if domain.isascii():
        labels = domain.lower().split(".")
        if len(domain) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            return None
        for label in labels:
            if label.startswith("xn--") and _a_label(label) is None:
                return None  # a bogus punycode label names nothing
        return ".".join(labels)
    try:
        # UTS 46 maps case and compatibility forms; encoding checks every label and
        # gives the A-label form.
        return idna.encode(domain, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def _a_label(label: str) -> str | None:
    """``label`` if it is a valid A-label (decodes and encodes back to itself)."""
    try:
        again = idna.encode(idna.decode(label)).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    return label if again == label else None


def _normalize_literal(literal: str) -> str | None:
    if not literal.endswith("]"):
        return None
    inner = literal[1:-1]
    try:
        if inner[:5].upper() == "IPV6:":
            return f"[IPv6:{ipaddress.IPv6Address(inner[5:]).compressed}]"
        parts = inner.split(".")
        if len(parts) == 4 and all(p.isascii() and p.isdigit() for p in parts):
            return "[{}]".format(ipaddress.IPv4Address(".".join(str(int(p)) for p in parts)))
    except ValueError:
        return None
    return None  # general address literals: no use here


def normalize_address(address: str) -> str | None:
    """``local@domain`` with the domain normalized (the local part as it is, requoted
    only if it needs quotes); None when the domain is not usable."""
    local, domain = smtp.split_address(address)
    normal = normalize_domain(domain)
    if normal is None:
        return None
    return smtp.join_address(local, normal)


@attrs.frozen
class _UsersOnly:
    """What `resolve_recipient` reads of an MDA: its users. Lets the MTA reuse the rule."""

    users: UserDB


class MTA:
    """The shared state of the MTA's SMTP listeners, and their session factories.

    ``data_dir`` holds ``queue/`` (and ``users.toml`` unless ``mda`` or ``users`` is
    given). With ``mda`` the MTA uses the MDA's users and authenticator, so logins and
    their throttling are shared with IMAP and POP3. ``aliases`` maps a user to the extra
    addresses it may send as. ``on_queued(entry)`` is called once a message is durably
    queued (the delivery runner's wake-up).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        mda: MDA | None = None,
        users: UserDB | None = None,
        authenticator: Authenticator | None = None,
        hostname: str = "localhost",
        local_domains: Iterable[str] = ("localhost",),
        aliases: Mapping[str, Iterable[str]] = {},
        tls_context: Any = None,
        allow_plaintext_auth: bool = False,
        postmaster: str | None = None,
        max_message_size: int = 50 * 1024 * 1024,
        max_recipients: int = 100,
        max_errors: int = 10,
        max_junk_commands: int = 20,
        tarpit_after: int = 3,
        tarpit_step: float = 1.0,
        tarpit_max: float = 10.0,
        idle_timeout: float = 300.0,
        on_queued: Callable[[QueueEntry], object] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        if mda is not None:
            users = users if users is not None else mda.users
            authenticator = authenticator or mda.authenticator
        self.users = users if users is not None else UserDB(self.data_dir / "users.toml")
        self.authenticator = authenticator or Authenticator(self.users, hostname=hostname)
        self.hostname = hostname
        domains = [normalize_domain(d) for d in local_domains]
        if None in domains:
            raise ValueError(f"invalid local domain in {list(local_domains)!r}")
        self.local_domains: tuple[str, ...] = tuple(dict.fromkeys(cast(list[str], domains)))
        self.aliases: dict[str, frozenset[str]] = {
            validate_name(user): frozenset(
                a for a in (normalize_address(x) for x in addresses) if a is not None
            )
            for user, addresses in aliases.items()
        }
        self.tls_context = tls_context
        self.allow_plaintext_auth = allow_plaintext_auth
        self.postmaster = postmaster
        self.max_message_size = max_message_size
        self.max_recipients = max_recipients
        self.max_errors = max_errors
        self.max_junk_commands = max_junk_commands
        self.tarpit_after = tarpit_after
        self.tarpit_step = tarpit_step
        self.tarpit_max = tarpit_max
        self.idle_timeout = idle_timeout
        self.on_queued = on_queued
        self.queue = Queue(self.data_dir / "queue")

    # -- session factories (pass these to serve()) ---------------------------------------

    def inbound_session(self, info: TransportInfo) -> Op[None]:
        """Port 25: mail for our domains' users only, from anyone, no AUTH."""
        from .smtpd import smtpd_flow

        return smtpd_flow(self, INBOUND, info)

    def submission_session(self, info: TransportInfo) -> Op[None]:
        """Port 587: AUTH (after STARTTLS) required, then any destination."""
        from .smtpd import smtpd_flow

        policy = attrs.evolve(SUBMISSION, allow_plaintext_auth=self.allow_plaintext_auth)
        return smtpd_flow(self, policy, info)

    def submissions_session(self, info: TransportInfo) -> Op[None]:
        """Port 465: submission over implicit TLS (serve it with ``tls=context``)."""
        from .smtpd import smtpd_flow

        policy = attrs.evolve(SUBMISSIONS, allow_plaintext_auth=self.allow_plaintext_auth)
        return smtpd_flow(self, policy, info)

    # -- address policy ------------------------------------------------------------------

    def is_local_domain(self, domain: str) -> bool:
        """True for one of our domains, in any case, IDNA form or with a trailing dot."""
        normal = normalize_domain(domain)
        return normal is not None and normal in self.local_domains

    def local_user(self, address: str) -> str | None:
        """The user a local address delivers to (the MDA's LMTP rule), or None."""
        return resolve_recipient(cast("MDA", _UsersOnly(self.users)), address)

    def postmaster_user(self) -> str | None:
        """Who gets mail for ``postmaster`` (RFC 5321 section 4.5.1): the configured
        user, else a user called postmaster, else nobody."""
        name = self.postmaster or "postmaster"
        user = self.users.get(name)
        return user.name if user is not None and user.enabled else None

    def sender_addresses(self, user: str) -> frozenset[str]:
        """The addresses ``user`` may put in MAIL FROM on submission, normalized: the
        name itself when it is an address, ``user@`` each local domain, its aliases."""
        canonical = validate_name(user)
        own: set[str] = set(self.aliases.get(canonical, ()))
        if "@" in canonical:
            address = normalize_address(canonical)
            if address is not None:
                own.add(address)
        else:
            own.update(f"{canonical}@{domain}" for domain in self.local_domains)
        return frozenset(a.lower() for a in own)

    def may_send_as(self, user: str, sender: str) -> bool:
        """Whether the authenticated ``user`` may use ``sender`` (case-insensitive)."""
        address = normalize_address(sender)
        return address is not None and address.lower() in self.sender_addresses(user)

    # -- hooks -----------------------------------------------------------------------------

    def queued(self, entry: QueueEntry) -> None:
        """A message is durably in the queue: wake whoever delivers."""
        if self.on_queued is not None:
            self.on_queued(entry)
