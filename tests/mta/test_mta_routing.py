"""Choosing the hops for a domain (`mta.routing.Router`), against the test DNS server of
`dns_server.py` on loopback: MX order and shuffling, implicit MX, null MX (RFC 7505),
NXDOMAIN, SERVFAIL and timeouts, static routes, a smarthost, address literals."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import pytest
from dns_server import DNSServer, make_resolver

from mailproto_adapters.mta.routing import MAX_ADDRESSES, Hop, RouteError, Router, parse_host_port

RECORDS = {
    "example.test": {"MX": ["20 mx2.example.test.", "10 mx1.example.test."]},
    "mx1.example.test": {"A": ["192.0.2.1"], "AAAA": ["2001:db8::1"]},
    "mx2.example.test": {"AAAA": ["2001:db8::2"]},
    "equal.test": {
        "MX": ["10 a.equal.test.", "10 b.equal.test.", "10 c.equal.test.", "5 d.equal.test."]
    },
    "a.equal.test": {"A": ["192.0.2.11"]},
    "b.equal.test": {"A": ["192.0.2.12"]},
    "c.equal.test": {"A": ["192.0.2.13"]},
    "d.equal.test": {"A": ["192.0.2.14"]},
    "implicit.test": {"A": ["192.0.2.20"], "TXT": ['"no mx here"']},
    "nothing.test": {"TXT": ['"no mx, no address"']},
    "null.test": {"MX": ["0 ."]},
    "mixed-null.test": {"MX": ["0 .", "10 mx1.example.test."]},
    "cname.test": {"CNAME": ["example.test."]},
    "alias-mx.test": {"MX": ["10 alias.alias-mx.test."]},
    "alias.alias-mx.test": {"CNAME": ["mx1.example.test."]},
    "ip-mx.test": {"MX": ["10 192.0.2.30."]},
    "dangling.test": {"MX": ["10 missing.dangling.test.", "20 noaddr.dangling.test."]},
    "noaddr.dangling.test": {"TXT": ['"nothing"']},
    "half.test": {"MX": ["10 broken.half.test.", "20 mx1.example.test."]},
    "tempfail.test": {"MX": ["10 broken.half.test."]},
    "dup.test": {"MX": ["10 mx1.example.test.", "20 mx1.example.test."]},
    "many.test": {"MX": [f"{i} mx1.example.test." for i in range(3)]},
    "wide.test": {"MX": ["10 wide.example.test."]},
    "wide.example.test": {"A": [f"192.0.2.{i}" for i in range(40, 47)]},
    "xn--unicod-gva.test": {"A": ["192.0.2.50"]},
}


@pytest.fixture(scope="module")
def nameserver() -> Iterator[DNSServer]:
    server = DNSServer(RECORDS, servfail=["servfail.test", "broken.half.test"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def router(nameserver: DNSServer) -> Router:
    return Router(resolver=nameserver.resolver(), random=random.Random(1))


def hosts(hops: list[Hop]) -> list[str]:
    return [h.host for h in hops]


def refusal(router: Router, domain: str) -> RouteError:
    with pytest.raises(RouteError) as info:
        router.route(domain)
    return info.value


def test_mx_in_order_of_preference_with_their_addresses(router: Router) -> None:
    hops = router.route("Example.TEST")
    assert hops == [
        Hop(host="mx1.example.test", preference=10, addresses=("192.0.2.1", "2001:db8::1")),
        Hop(host="mx2.example.test", preference=20, addresses=("2001:db8::2",)),
    ]
    assert all(h.tls == "may" and h.port == 25 for h in hops)


def test_equal_preferences_are_shuffled(nameserver: DNSServer) -> None:
    router = Router(resolver=nameserver.resolver(), random=random.Random(7))
    orders = {tuple(hosts(router.route("equal.test"))) for _ in range(30)}
    assert len(orders) > 1
    for order in orders:
        assert order[0] == "d.equal.test"
        assert sorted(order[1:]) == ["a.equal.test", "b.equal.test", "c.equal.test"]


def test_implicit_mx(router: Router) -> None:
    assert router.route("implicit.test") == [
        Hop(host="implicit.test", preference=0, addresses=("192.0.2.20",))
    ]
    error = refusal(router, "nothing.test")
    assert error.permanent
    assert error.reply.startswith("550 5.4.4 ")


def test_null_mx(router: Router) -> None:
    error = refusal(router, "null.test")
    assert error.permanent
    assert error.reply.startswith("556 5.1.10 ")
    # A null MX beside real ones is ignored.
    assert hosts(router.route("mixed-null.test")) == ["mx1.example.test"]


def test_nxdomain_is_permanent(router: Router) -> None:
    error = refusal(router, "no-such-domain.test")
    assert error.permanent
    assert error.reply.startswith("550 5.1.2 ")
    assert str(error) == error.reply


def test_servfail_is_temporary(router: Router) -> None:
    error = refusal(router, "servfail.test")
    assert not error.permanent
    assert error.reply.startswith("451 4.4.3 ")


def test_timeout_is_temporary() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:  # never answers
        mute.bind(("127.0.0.1", 0))
        router = Router(resolver=make_resolver(mute.getsockname()[1], lifetime=0.3))
        error = refusal(router, "example.test")
    assert not error.permanent
    assert error.reply.startswith("451 4.4.3 ")


def test_cnames_are_followed(router: Router) -> None:
    assert hosts(router.route("cname.test")) == ["mx1.example.test", "mx2.example.test"]
    (hop,) = router.route("alias-mx.test")  # an MX target that is a CNAME: lenient
    assert hop.host == "alias.alias-mx.test"
    assert hop.addresses == ("192.0.2.1", "2001:db8::1")


def test_mx_written_as_an_ip_address(router: Router) -> None:
    assert router.route("ip-mx.test") == [
        Hop(host="192.0.2.30", preference=10, addresses=("192.0.2.30",))
    ]


def test_mx_hosts_without_addresses(router: Router) -> None:
    error = refusal(router, "dangling.test")
    assert error.permanent
    assert error.reply.startswith("550 5.4.4 ")
    # One MX host's lookup fails: the others are still used...
    assert hosts(router.route("half.test")) == ["mx1.example.test"]
    # ...and when it was the only one, the failure is temporary.
    error = refusal(router, "tempfail.test")
    assert not error.permanent
    assert error.reply.startswith("451 4.4.3 ")


def test_duplicates_and_limits(router: Router) -> None:
    assert router.route("dup.test") == [
        Hop(host="mx1.example.test", preference=10, addresses=("192.0.2.1", "2001:db8::1"))
    ]
    assert len(router.route("many.test")) == 1
    (wide,) = router.route("wide.test")
    assert len(wide.addresses) == MAX_ADDRESSES


def test_unicode_domain(router: Router) -> None:
    (hop,) = router.route("unicodé.test")
    assert hop.addresses == ("192.0.2.50",)


def test_bad_domains(router: Router) -> None:
    for domain in ("", " ", "."):
        assert refusal(router, domain).reply.startswith("550 5.1.2 Empty")
    error = refusal(router, "a" * 64 + ".test")  # a label over 63 octets
    assert error.permanent
    assert error.reply.startswith("550 5.1.2 ")


def test_address_literals(router: Router) -> None:
    assert router.route("[192.0.2.9]") == [Hop(host="192.0.2.9", addresses=("192.0.2.9",))]
    assert router.route("[IPv6:2001:DB8::9]") == [
        Hop(host="2001:db8::9", addresses=("2001:db8::9",))
    ]
    for bad in ("[example.test]", "[IPv6:192.0.2.1x]", "[300.1.1.1]"):
        error = refusal(router, bad)
        assert error.permanent
        assert error.reply.startswith("550 5.1.3 ")


def test_static_routes_come_first(nameserver: DNSServer) -> None:
    router = Router(
        static_routes={
            "Example.test": "relay.internal:2525",
            "lit.test": "[192.0.2.7]:26",
            "v6.test": "[IPv6:::1]",
            "bare6.test": "::1",
            "name.test": "[mail.internal]:587",
        },
        smarthost="smart.example:587",
        resolver=nameserver.resolver(),
    )
    assert router.route("EXAMPLE.TEST.") == [Hop(host="relay.internal", port=2525)]
    assert router.route("lit.test") == [Hop(host="192.0.2.7", port=26, addresses=("192.0.2.7",))]
    assert router.route("v6.test") == [Hop(host="::1", addresses=("::1",))]
    assert router.route("bare6.test") == [Hop(host="::1", addresses=("::1",))]
    assert router.route("name.test") == [Hop(host="mail.internal", port=587)]
    # Everything else goes to the smarthost, literals and unknown domains included.
    for domain in ("other.test", "[192.0.2.1]", "no-such-domain.test"):
        (hop,) = router.route(domain)
        assert (hop.host, hop.port, hop.tls, hop.auth) == ("smart.example", 587, "may", None)
    assert nameserver.queries.count(("other.test", "MX")) == 0


def test_smarthost_with_credentials_and_tls(nameserver: DNSServer) -> None:
    router = Router(
        smarthost="[192.0.2.5]",
        smarthost_auth=("user", "secret"),
        smarthost_tls="encrypt",
        port=587,
    )
    (hop,) = router.route("example.test")
    assert hop == Hop(
        host="192.0.2.5", port=587, tls="encrypt", auth=("user", "secret"), addresses=("192.0.2.5",)
    )
    assert "secret" not in repr(hop)


def test_parse_host_port() -> None:
    assert parse_host_port("mx.example:2525", 25) == ("mx.example", 2525, ())
    assert parse_host_port("mx.example.", 25) == ("mx.example", 25, ())
    assert parse_host_port("192.0.2.1:26", 25) == ("192.0.2.1", 26, ("192.0.2.1",))
    assert parse_host_port("[::1]:26", 25) == ("::1", 26, ("::1",))
    for bad in ("[::1", "[::1]26", "host:0", "host:x", "host:70000", ":25", "[]"):
        with pytest.raises(ValueError):
            parse_host_port(bad, 25)


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        Router(static_routes={"a.test": "host:nope"})
    with pytest.raises(ValueError):
        Router(smarthost="smart.example", smarthost_tls="sometimes")
    with pytest.raises(ValueError):
        Hop(host="x", tls="always")


def test_default_resolver_is_made_on_first_use() -> None:
    import dns.resolver

    router = Router()
    assert isinstance(router.resolver, dns.resolver.Resolver)
    assert router.resolver is router.resolver


def test_dns_server_odd_queries(nameserver: DNSServer) -> None:
    import dns.message
    import dns.query

    assert nameserver.answer(b"garbage") is None
    query = dns.message.make_query("example.test", "MX")
    response = dns.query.tcp(query, "127.0.0.1", port=nameserver.port, timeout=2)
    assert len(response.answer) == 1
    empty = dns.message.Message()
    reply = dns.message.from_wire(nameserver.answer(empty.to_wire()) or b"")
    assert reply.rcode() == 1  # FORMERR


def test_own_name_in_the_mx_list(nameserver: DNSServer) -> None:
    # RFC 5321 5.1: drop ourselves and every MX host not better than us.
    router = Router(resolver=nameserver.resolver(), own_names=["MX2.example.test."])
    assert hosts(router.route("example.test")) == ["mx1.example.test"]
    router = Router(resolver=nameserver.resolver(), own_names=["mx1.example.test"])
    error = refusal(router, "example.test")
    assert error.permanent
    assert error.reply.startswith("554 5.4.6 ")
