"""Where mail for a domain goes: static routes, a smarthost, or the domain's MX hosts.

RFC 5321 section 5.1 (locating the target host): MX records in order of preference,
equal preferences shuffled; no MX record means the domain itself is an implicit MX of
preference 0 when it has an address; a CNAME is followed, the resulting name processed
as if it were the initial one. RFC 5321 section 4.1.3: address literals (``[192.0.2.1]``,
``[IPv6:2001:db8::1]``) name the host directly. RFC 7505: a null MX (one MX record whose
target is ".") says the domain accepts no mail.

The addresses (A, then AAAA) of each MX host are looked up here, with the same resolver,
so the delivery only connects; hosts named by static routes and the smarthost are left to
the system's resolver (``/etc/hosts`` included) at connection time.

Lenient where Postfix is: an MX target that is a CNAME is followed (RFC 5321 forbids it
but it is common), and one written as an IP address is used as that address.
"""

from __future__ import annotations

import ipaddress
import random as _random
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

__all__ = ["MAX_ADDRESSES", "MAX_MX", "Hop", "RouteError", "Router", "parse_host_port"]

# Bounds on what one domain's DNS data can make us try (RFC 5321 5.1 allows a limit).
MAX_MX = 10
MAX_ADDRESSES = 4  # per MX host

TLS_POLICIES = ("may", "encrypt", "none")


@attrs.frozen(kw_only=True)
class Hop:
    """One host to try: its name (for logs, SNI and certificate checks) and port.

    ``addresses``: the IP addresses to connect to, in order; empty means the delivery
    resolves ``host`` itself (static routes and smarthosts). ``auth`` is kept out of repr.
    """

    host: str
    port: int = 25
    preference: int = 0
    tls: str = "may"
    implicit_tls: bool = False
    auth: tuple[str, str] | None = attrs.field(default=None, repr=False)
    addresses: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.tls not in TLS_POLICIES:
            raise ValueError(f"tls must be one of {TLS_POLICIES}, not {self.tls!r}")


class RouteError(Exception):
    """No hop for this domain: ``reply`` is the SMTP reply for the recipients
    ("556 5.1.10 ..."); ``permanent`` says whether to bounce now or retry later."""

    def __init__(self, reply: str, *, permanent: bool) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent


def _literal(text: str) -> str | None:
    """The IP address inside an address literal (RFC 5321 4.1.3), or None."""
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else None
    if inner is None:
        return None
    if inner[:5].upper() == "IPV6:":
        try:
            return str(ipaddress.IPv6Address(inner[5:]))
        except ValueError:
            return None
    try:
        return str(ipaddress.ip_address(inner))
    except ValueError:
        return None


def _ip(text: str) -> str | None:
    """``text`` as a normalised IP address, or None if it is a name."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def parse_host_port(value: str, default_port: int) -> tuple[str, int, tuple[str, ...]]:
    """``"host:port"``, ``"[literal]:port"`` or ``"host"`` -> (host, port, addresses).

    A bracketed host is an address literal (``[192.0.2.1]``, ``[IPv6:::1]``, ``[::1]``)
    or, as in Postfix's ``relayhost``, a name not to look up MX records for. Raises
    ValueError when it cannot be read.
    """
    text = value.strip()
    port = default_port
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"unclosed bracket in {value!r}")
        host, rest = text[: close + 1], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad host:port {value!r}")
            port = _port(rest[1:], value)
        address = _literal(host)
        if address is not None:
            return address, port, (address,)
        host = host[1:-1]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon or ":" in host:
            host = text
        else:
            port = _port(port_text, value)
    host = host.rstrip(".")
    if not host:
        raise ValueError(f"no host in {value!r}")
    address = _ip(host)
    return host, port, (address,) if address else ()


def _port(text: str, value: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in {value!r}")
    return int(text)


class Router:
    """Chooses the hops for a domain; see the module docstring.

    ``static_routes``: domain -> "host:port" (exact domain, any case). ``smarthost``:
    every domain without a static route goes there. ``resolver``: a
    ``dns.resolver.Resolver`` (the system's by default). ``random``: shuffles equal MX
    preferences (a seeded one makes tests repeatable). ``own_names``: this host's names;
    an MX host among them is dropped with every one not better than it.
    """

    def __init__(
        self,
        *,
        static_routes: Mapping[str, str] = {},
        smarthost: str | None = None,
        smarthost_auth: tuple[str, str] | None = None,
        smarthost_tls: str = "may",
        resolver: Any = None,
        port: int = 25,
        random: _random.Random | None = None,
        own_names: Iterable[str] = (),
    ) -> None:
        self.port = port
        self._own = {name.lower().rstrip(".") for name in own_names}
        self._resolver = resolver
        self._random = random or _random.Random()
        self._static: dict[str, Hop] = {}
        for domain, target in static_routes.items():
            host, hop_port, addresses = parse_host_port(target, port)
            self._static[domain.lower().rstrip(".")] = Hop(
                host=host, port=hop_port, addresses=addresses
            )
        self._smarthost: Hop | None = None
        if smarthost is not None:
            host, hop_port, addresses = parse_host_port(smarthost, port)
            self._smarthost = Hop(
                host=host,
                port=hop_port,
                tls=smarthost_tls,
                auth=smarthost_auth,
                addresses=addresses,
            )

    @property
    def resolver(self) -> Any:
        """The DNS resolver, made on first use (reading ``/etc/resolv.conf``)."""
        if self._resolver is None:
            self._resolver = dns.resolver.Resolver()
        return self._resolver

    def route(self, domain: str) -> list[Hop]:
        """The hops to try for ``domain``, best first; raises `RouteError`."""
        text = domain.strip()
        key = text.lower().rstrip(".")
        if not key:
            raise RouteError("550 5.1.2 Empty destination domain", permanent=True)
        static = self._static.get(key)
        if static is not None:
            return [static]
        if self._smarthost is not None:
            return [self._smarthost]
        if text.startswith("["):
            address = _literal(text)
            if address is None:
                raise RouteError(f"550 5.1.3 Bad address literal {text[:100]}", permanent=True)
            return [Hop(host=address, port=self.port, addresses=(address,))]
        return self._mx_hops(key)

    # -- DNS

    def _name(self, domain: str) -> dns.name.Name:
        try:
            return dns.name.from_text(domain)
        except (dns.exception.DNSException, UnicodeError, ValueError):
            raise RouteError(
                f"550 5.1.2 Bad destination domain {domain[:100]}", permanent=True
            ) from None

    def _query(self, name: dns.name.Name, rdtype: str) -> Any | None:
        """The answer, None for no record of that type; RouteError for no such domain
        or a DNS failure."""
        try:
            return self.resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            raise RouteError(
                f"550 5.1.2 Domain {name.to_text(omit_final_dot=True)} does not exist",
                permanent=True,
            ) from None
        except dns.resolver.NoAnswer:
            return None
        except dns.exception.DNSException as exc:  # SERVFAIL, timeout, refused...
            raise RouteError(
                f"451 4.4.3 DNS lookup of {name.to_text(omit_final_dot=True)} {rdtype} "
                f"failed: {type(exc).__name__}",
                permanent=False,
            ) from None

    def _mx_hops(self, domain: str) -> list[Hop]:
        name = self._name(domain)
        answer = self._query(name, "MX")
        records: list[tuple[int, str]] = []
        if answer is not None:
            for rr in answer:
                records.append((int(rr.preference), rr.exchange.to_text(omit_final_dot=True)))
        real = [(pref, host) for pref, host in records if host not in ("", ".")]
        if records and not real:
            # RFC 7505 section 3: the domain accepts no mail.
            raise RouteError(
                f"556 5.1.10 Domain {domain} does not accept mail (null MX)", permanent=True
            )
        implicit = not real
        if implicit:
            real = [(0, domain)]
        hosts = self._ordered(real)
        mine = [pref for pref, host in hosts if host.lower() in self._own]
        if mine:
            # RFC 5321 5.1: we are an MX ourselves; only better ones may take the mail.
            hosts = [(pref, host) for pref, host in hosts if pref < mine[0]]
            if not hosts:
                raise RouteError(
                    f"554 5.4.6 Mail for {domain} loops back to myself", permanent=True
                )
        hops: list[Hop] = []
        temporary: RouteError | None = None
        for preference, host in hosts[:MAX_MX]:
            try:
                addresses = self._addresses(host)
            except RouteError as exc:
                if exc.permanent:
                    continue  # an MX host that does not exist: try the others
                temporary = exc
                continue
            if addresses:
                hops.append(
                    Hop(host=host, port=self.port, preference=preference, addresses=addresses)
                )
        if hops:
            return hops
        if temporary is not None:
            raise temporary
        what = "has no MX and no address" if implicit else "has no MX host with an address"
        raise RouteError(f"550 5.4.4 Domain {domain} {what}", permanent=True)

    def _ordered(self, records: list[tuple[int, str]]) -> list[tuple[int, str]]:
        """By preference, equal ones shuffled (RFC 5321 5.1); a host listed twice keeps
        its best preference."""
        self._random.shuffle(records)
        records.sort(key=lambda r: r[0])  # stable: the shuffle survives within a preference
        seen: set[str] = set()
        unique: list[tuple[int, str]] = []
        for preference, host in records:
            if host.lower() not in seen:
                seen.add(host.lower())
                unique.append((preference, host))
        return unique

    def _addresses(self, host: str) -> tuple[str, ...]:
        """IPv4 then IPv6 addresses of an MX host (an IP written as a name is itself)."""
        address = _ip(host)
        if address is not None:
            return (address,)
        name = self._name(host)
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            answer = self._query(name, rdtype)
            if answer is None:
                continue
            for rr in answer:
                if rr.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and rr.address not in found:
                    found.append(rr.address)
        return tuple(found[:MAX_ADDRESSES])
