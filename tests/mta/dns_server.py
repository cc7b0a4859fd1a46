"""A tiny authoritative DNS server on 127.0.0.1 for tests (UDP and TCP, same port).

``DNSServer({"example.test": {"MX": ["10 mx1.example.test."]}, ...})`` answers from the
dict: names it holds get their records (NOERROR with an empty answer for other types),
a CNAME is followed inside the dict, names listed in ``servfail`` get SERVFAIL, every
other name NXDOMAIN. Start with ``start()`` (returns the port), end with ``stop()``.
``resolver()`` gives a dnspython resolver that asks only this server.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterable, Mapping

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset

Records = Mapping[str, Mapping[str, Iterable[str]]]


def _key(name: str | dns.name.Name) -> str:
    text = name.to_text() if isinstance(name, dns.name.Name) else name
    return text.lower().rstrip(".")


class DNSServer:
    """Answers queries from ``records``: name -> type -> list of rdata texts."""

    def __init__(self, records: Records, *, servfail: Iterable[str] = (), ttl: int = 60) -> None:
        self.records = {
            _key(n): {t.upper(): list(v) for t, v in r.items()} for n, r in records.items()
        }
        self.servfail = {_key(n) for n in servfail}
        self.ttl = ttl
        self.queries: list[tuple[str, str]] = []  # (name, type) in order of arrival
        self.port = 0
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- answering

    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query message, or None if it cannot be read."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        self.queries.append((_key(qname), dns.rdatatype.to_text(qtype)))
        name = qname
        for _ in range(8):  # follow CNAMEs held here
            key = _key(name)
            if key in self.servfail:
                response.set_rcode(dns.rcode.SERVFAIL)
                return response.to_wire()
            entry = self.records.get(key)
            if entry is None:
                if name == qname:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                break
            cname = entry.get("CNAME")
            if cname and qtype != dns.rdatatype.CNAME:
                rrset = dns.rrset.from_text_list(name, self.ttl, "IN", "CNAME", cname[:1])
                response.answer.append(rrset)
                name = dns.name.from_text(cname[0])
                continue
            values = entry.get(dns.rdatatype.to_text(qtype))
            if values:
                rrset = dns.rrset.from_text_list(
                    name, self.ttl, "IN", dns.rdatatype.to_text(qtype), values
                )
                response.answer.append(rrset)
            break
        return response.to_wire()

    # -- serving

    def start(self) -> int:
        """Bind UDP and TCP on one free loopback port and serve in threads."""
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            break
        else:  # pragma: no cover - the kernel kept handing out taken ports
            raise RuntimeError("no free port for UDP and TCP")
        udp.settimeout(0.1)
        tcp.settimeout(0.1)
        self._udp, self._tcp, self.port = udp, tcp, port
        for target in (self._serve_udp, self._serve_tcp):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return port

    def _serve_udp(self) -> None:
        assert self._udp is not None
        while not self._stopping.is_set():
            try:
                wire, peer = self._udp.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            reply = self.answer(wire)
            if reply is not None:
                self._udp.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        assert self._tcp is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._tcp.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                try:
                    head = _read_exact(conn, 2)
                    wire = _read_exact(conn, struct.unpack("!H", head)[0])
                except OSError:
                    continue
                reply = self.answer(wire)
                if reply is not None:
                    conn.sendall(struct.pack("!H", len(reply)) + reply)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(5)
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()

    def resolver(self, *, lifetime: float = 2.0) -> dns.resolver.Resolver:
        return make_resolver(self.port, lifetime=lifetime)

    def __enter__(self) -> DNSServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_resolver(port: int, *, lifetime: float = 2.0) -> dns.resolver.Resolver:
    """A resolver asking only 127.0.0.1:port, without caching or search lists."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.timeout = lifetime
    resolver.lifetime = lifetime
    return resolver


def _read_exact(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data
