"""The inbound listener against open-relay tricks and SMTP smuggling.

Relay battery: an unauthenticated client tries known ways of getting mail for a remote
domain accepted by a host that only takes mail for its own domains (percent hack, source
routes, quoted local parts, bang paths, address literals, trailing dots, case games,
look-alike and punycode domains...). Each trick runs on a fresh connection; each refusal
must be a 5xx with an enhanced status code, and whatever was accepted must be queued
for a local user only (checked on disk at the end).

Smuggling: bodies carrying a fake end of data (``<LF>.<LF>``, ``<CR>.<CR>``,
``<LF>.<CR><LF>``...) followed by a second transaction. Only CRLF.CRLF ends the data, so
the server answers exactly one reply to the body, queues at most the one message, and
never the smuggled one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from test_mta_smtpd import Env, Raw, env_fixture, trace_and_rest

from mailproto import smtp

if TYPE_CHECKING:
    from conftest import TLSFiles


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tls_files: TLSFiles) -> Iterator[Env]:
    """One MTA for the whole battery, so the last test can look at all it queued."""
    yield from env_fixture(tmp_path_factory.mktemp("relay"), tls_files)


@pytest.fixture(scope="module")
def smuggle_env(tmp_path_factory: pytest.TempPathFactory, tls_files: TLSFiles) -> Iterator[Env]:
    yield from env_fixture(tmp_path_factory.mktemp("smuggle"), tls_files)


RAN: set[str] = set()  # the tricks run so far in this session


ACCEPT = "accept"
R = "remote.test"  # a domain that is not ours; ours are example.org, example.net, bücher.example

# (name, RCPT argument, SMTPUTF8 in MAIL, expected: ACCEPT or the enhanced code)
TRICKS: list[tuple[str, str, bool, str]] = [
    ("plain remote", f"<user@{R}>", False, "5.7.1"),
    ("percent hack", f"<user%{R}@example.org>", False, "5.7.1"),
    ("percent hack, quoted", f'<"user%{R}"@example.org>', False, "5.7.1"),
    ("double percent", f"<user%{R}%example.org@example.org>", False, "5.7.1"),
    ("source route", f"<@example.org:user@{R}>", False, "5.7.1"),
    ("source route, two hops", f"<@example.org,@example.net:user@{R}>", False, "5.7.1"),
    ("quoted address in local part", f'<"user@{R}"@example.org>', False, "5.7.1"),
    ("quoted route in local part", f'<"@{R}:user"@example.org>', False, "5.7.1"),
    ("bang path", f"<{R}!user@example.org>", False, "5.7.1"),
    ("two at signs", f"<user@{R}@example.org>", False, "5.1.3"),
    ("backslash-escaped at", f"<user\\@{R}@example.org>", False, "5.1.3"),
    ("quoted backslash-escaped at", f'<"user\\@{R}"@example.org>', False, "5.7.1"),
    ("IPv4 literal", "<user@[127.0.0.1]>", False, "5.7.1"),
    ("IPv4 literal, leading zeros", "<alice@[127.000.000.001]>", False, "5.7.1"),
    ("IPv6 literal", "<user@[IPv6:::1]>", False, "5.7.1"),
    ("percent hack to a literal", "<user%[127.0.0.1]@example.org>", False, "5.1.3"),
    ("bare IP as domain", "<user@127.0.0.1>", False, "5.7.1"),
    ("remote with trailing dot", f"<user@{R}.>", False, "5.1.3"),
    ("local with trailing dot", "<alice@example.org.>", False, "5.1.3"),
    ("local as a subdomain of remote", f"<user@example.org.{R}>", False, "5.7.1"),
    ("remote as a subdomain of local", f"<user@{R}.example.org>", False, "5.7.1"),
    ("local name in a comment", f"<user@{R}(example.org)>", False, "5.1.3"),
    ("spaces inside brackets", f"< user@{R} >", False, "5.1.3"),
    ("space before the bracket", f" <user@{R}>", False, "5.7.1"),
    ("no brackets", f"user@{R}", False, "5.1.3"),
    ("Cyrillic o look-alike", "<alice@ex\u0430mple.org>", True, "5.7.1"),
    ("look-alike without SMTPUTF8", "<alice@ex\u0430mple.org>", False, "5.6.7"),
    ("punycode of the look-alike", "<alice@xn--exmple-4nf.org>", False, "5.7.1"),
    ("bogus punycode", "<alice@xn--zz.org>", False, "5.7.1"),
    ("postmaster elsewhere", f"<postmaster@{R}>", False, "5.7.1"),
    ("very long local part", "<" + "a" * 200 + "@example.org>", False, "5.1.1"),
    ("path too long", "<" + "a" * 250 + f"@{R}>", False, "5.1.3"),
    ("unknown local user", "<nobody@example.org>", False, "5.1.1"),
    ("bare CR in the path", f"<user@{R}\r>", False, "5.5.2"),
    # Tricks that must NOT be refused: they are honest local addresses.
    ("case games", "<ALICE@EXAMPLE.ORG>", False, ACCEPT),
    ("mixed case full-address user", "<BoB@Example.Net>", False, ACCEPT),
    ("quoted plain local part", '<"alice"@example.org>', False, ACCEPT),
    ("route ending at a local user", f"<@{R}:alice@example.org>", False, ACCEPT),
    ("U-label of our IDN domain", "<alice@B\u00dcCHER.example>", True, ACCEPT),
    ("A-label of our IDN domain", "<alice@XN--BCHER-KVA.example>", False, ACCEPT),
    ("fullwidth letters of our domain", "<alice@\uff45xample.org>", True, ACCEPT),
    ("bare postmaster", "<postmaster>", False, ACCEPT),
]


@pytest.mark.parametrize(
    ("name", "argument", "utf8", "expected"), TRICKS, ids=[t[0] for t in TRICKS]
)
def test_relay_trick(env: Env, name: str, argument: str, utf8: bool, expected: str) -> None:
    RAN.add(name)
    with Raw(env.inbound.port) as raw:
        assert raw.cmd("EHLO attacker.example")[0] == 250
        assert raw.cmd(f"MAIL FROM:<spammer@{R}>" + (" SMTPUTF8" if utf8 else ""))[0] == 250
        code, text = raw.cmd(b"RCPT TO:" + argument.encode("utf-8"))
        if expected != ACCEPT:
            assert 500 <= code < 600, (code, text)
            assert text.split(" ", 1)[0] == expected, text
            assert raw.cmd("DATA")[0] in (503, 554)  # nothing to send to
            return
        assert code == 250, (code, text)
        assert raw.cmd("DATA")[0] == 354
        code, text = raw.cmd(f"Subject: {name}\r\n\r\nbody\r\n.".encode())
        assert code == 250, text
    assert any(f"Subject: {name}".encode() in q.message for q in env.queued)


def test_relay_battery_queued_nothing_remote(env: Env) -> None:
    """Runs after the tricks (same module-wide MTA): only local users in the queue."""
    accepted = sum(1 for t in TRICKS if t[3] == ACCEPT and t[0] in RAN)
    assert len(TRICKS) - sum(1 for t in TRICKS if t[3] == ACCEPT) >= 20
    entries = env.disk()
    assert len(entries) == accepted
    for entry, _ in entries:
        for rcpt in entry.recipients:
            _, domain = smtp.split_address(rcpt.address)
            assert env.mta.is_local_domain(domain), rcpt.address
            assert env.mta.local_user(rcpt.address) is not None, rcpt.address
    assert env.leftovers() == []


# --- SMTP smuggling ---------------------------------------------------------------------

SMUGGLED = (
    b"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"
    b"Subject: smuggled\r\n\r\nI was not sent by this client\r\n"
)
FAKE_ENDS = {
    "LF.LF": b"\n.\n",
    "CR.CR": b"\r.\r",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.CR": b"\r\n.\r",
    "LF.CR": b"\n.\r",
    "CR.LF": b"\r.\n",
    "CRLF.CRCRLF": b"\r\n.\r\r\n",
    "CRLF.NUL.CRLF": b"\r\n.\x00\r\n",
    "CRLF.space.CRLF": b"\r\n. \r\n",
}


def unstuffed(body: bytes) -> bytes:
    """What a body sent after DATA is once received: each line's leading dot removed."""
    return b"\r\n".join(line[1:] if line[:1] == b"." else line for line in body.split(b"\r\n"))


@pytest.mark.parametrize("fake_end", list(FAKE_ENDS.values()), ids=list(FAKE_ENDS))
@pytest.mark.parametrize("pipelined", [False, True], ids=["lockstep", "pipelined"])
def test_smuggling(smuggle_env: Env, fake_end: bytes, pipelined: bool) -> None:
    env = smuggle_env
    before = set(env.mta.queue.ids())
    body = b"Subject: carrier\r\n\r\nfirst part" + fake_end + SMUGGLED + b"tail\r\n"
    with Raw(env.inbound.port) as raw:
        raw.cmd("EHLO client.example")
        head = b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"
        if pipelined:
            raw.send(head + body + b".\r\nQUIT\r\n")
            assert [raw.reply()[0] for _ in range(3)] == [250, 250, 354]
        else:
            for line in head.split(b"\r\n")[:-1]:
                raw.cmd(line)
            raw.send(body + b".\r\nQUIT\r\n")
        final = raw.reply()
        quit_reply = raw.reply()
        assert raw.reply() == (0, "")  # nothing more: no reply to a smuggled command
    assert quit_reply[0] == 221
    entries = [(e, m) for e, m in env.disk() if e.id not in before]
    if final[0] == 250:
        # Accepted whole: one message, every octet of it, the fake end included.
        ((entry, message),) = entries
        assert entry.sender == "a@remote.test"
        assert trace_and_rest(message)[1] == unstuffed(body)
    else:
        assert final == (550, "5.5.2 Message contains a bare CR or LF")
        assert entries == []
    assert env.leftovers() == []


def test_dot_stuffing_is_not_an_end(smuggle_env: Env) -> None:
    env = smuggle_env
    before = len(env.queued)
    with Raw(env.inbound.port) as raw:
        raw.cmd("EHLO client.example")
        raw.cmd("MAIL FROM:<a@remote.test>")
        raw.cmd("RCPT TO:<alice@example.org>")
        raw.cmd("DATA")
        code, _ = raw.cmd(b"Subject: stuffed\r\n\r\n..\r\n...\r\n.x\r\nend\r\n.")
        assert code == 250
    (queued,) = env.queued[before:]
    assert trace_and_rest(queued.message)[1] == b"Subject: stuffed\r\n\r\n.\r\n..\r\nx\r\nend\r\n"
