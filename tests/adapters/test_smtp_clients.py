"""SMTPClient (blocking) and AsyncSMTPClient (asyncio, anyio on asyncio and trio).

Against real servers on 127.0.0.1: our example sink (STARTTLS with a trustme
certificate, AUTH) as a subprocess, and aiosmtpd in a thread (a recipient it refuses,
a password it refuses, LMTP). Every scenario is one async function run by each flavour:
the blocking client is wrapped so that the same scenario drives it.
"""

from __future__ import annotations

import email.message
import email.policy
import ssl
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from mailproto_adapters import anyio as anyio_flavour
from mailproto_adapters import asyncio as asyncio_flavour
from mailproto_adapters import blocking
from mailproto_adapters.errors import AuthenticationFailed, RecipientsRefused, ServerError

if TYPE_CHECKING:
    from conftest import RequireTool, StartSink, TLSFiles

pytestmark = pytest.mark.interop

FLAVOURS = ["blocking", "asyncio", "anyio-asyncio", "anyio-trio"]
USER, PASSWORD = "alice", "correct horse"


class SyncAsAsync:
    """The blocking client behind the async API, so one scenario tests every flavour."""

    def __init__(self, client: blocking.SMTPClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call

    async def __aenter__(self) -> SyncAsAsync:
        self.client.__enter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.client.__exit__(*exc)


def client(flavour: str, port: int, **kwargs: Any) -> Any:
    if flavour == "blocking":
        return SyncAsAsync(blocking.SMTPClient("127.0.0.1", port, **kwargs))
    module: Any = asyncio_flavour if flavour == "asyncio" else anyio_flavour
    return module.AsyncSMTPClient("127.0.0.1", port, **kwargs)


def run(flavour: str, scenario: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(scenario, backend="trio" if flavour == "anyio-trio" else "asyncio")


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def a_message() -> email.message.EmailMessage:
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Alice <alice@example.com>"
    msg["To"] = "bob@example.com, carol@example.com"
    msg["Bcc"] = "dave@example.com"
    msg["Subject"] = "Grüße"
    msg.set_content("Hällo wörld\n.leading dot\n")
    return msg


# --- our example sink: STARTTLS, AUTH, a whole message ----------------------------------


def test_starttls_login_send(flavour: str, start_sink: StartSink, tls_files: TLSFiles) -> None:
    sink = start_sink(*tls_files.args(), "--user", USER, "--password", PASSWORD)
    context = tls_files.client_context()

    async def scenario() -> Any:
        async with client(flavour, sink.port, starttls=context) as smtp:
            assert smtp.tls_info is not None
            await smtp.login(USER, PASSWORD)
            return await smtp.send_message(a_message())

    result = run(flavour, scenario)
    assert result.accepted == ("bob@example.com", "carol@example.com", "dave@example.com")
    assert result.refused == {}
    assert result.reply.code == 250
    [delivered] = sink.messages()
    assert b"Bcc" not in delivered
    assert b"\r\n..leading dot" not in delivered  # dot-stuffing undone by the server
    parsed = email.message_from_bytes(delivered, policy=email.policy.default)
    assert str(parsed["Subject"]) == "Grüße"
    body = parsed.get_body()
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == "Hällo wörld\n.leading dot\n"


def test_starttls_required_but_the_certificate_is_not_trusted(
    flavour: str, start_sink: StartSink, tls_files: TLSFiles
) -> None:
    sink = start_sink(*tls_files.args())

    async def scenario() -> None:
        async with client(flavour, sink.port, starttls=True):
            raise AssertionError("the handshake should fail")

    from mailproto_adapters.errors import TLSFailed

    with pytest.raises(TLSFailed, match="certificate"):
        run(flavour, scenario)


# --- aiosmtpd: refusals, LMTP -------------------------------------------------------------


class Handler:
    def __init__(self) -> None:
        self.deliveries: list[tuple[str, list[str], bytes]] = []

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused"):
            return "553 5.7.1 Sender refused"
        envelope.mail_from = address
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.deliveries.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        if getattr(server, "lmtp_replies", None):
            return "\r\n".join(server.lmtp_replies[: len(envelope.rcpt_tos)])
        return "250 2.0.0 Message accepted"


@pytest.fixture
def aiosmtpd_server(require_tool: RequireTool) -> Iterator[Callable[..., tuple[int, Handler]]]:
    require_tool("aiosmtpd", module=True)
    from aiosmtpd.controller import Controller
    from aiosmtpd.lmtp import LMTP
    from aiosmtpd.smtp import SMTP, AuthResult

    def authenticator(*args: Any) -> Any:
        data = args[-1]
        ok = (data.login, data.password) == (USER.encode(), PASSWORD.encode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends 535

    class Ephemeral(Controller):
        lmtp = False

        def factory(self) -> SMTP:
            server = (LMTP if self.lmtp else SMTP)(self.handler, **self.SMTP_kwargs)
            server.lmtp_replies = ["250 2.0.0 ok", "452 4.2.2 mailbox full"]  # type: ignore[attr-defined]
            return server

        def _trigger_server(self) -> None:
            server: Any = self.server
            self.port = server.sockets[0].getsockname()[1]
            super()._trigger_server()  # type: ignore[no-untyped-call]

    started: list[Ephemeral] = []

    def start(*, lmtp: bool = False) -> tuple[int, Handler]:
        handler = Handler()
        kwargs: dict[str, Any] = {}
        if not lmtp:
            kwargs = {"authenticator": authenticator, "auth_require_tls": False}
        controller = Ephemeral(handler, hostname="127.0.0.1", port=0, **kwargs)
        controller.lmtp = lmtp
        controller.start()
        started.append(controller)
        return controller.port, handler

    try:
        yield start
    finally:
        for controller in started:
            controller.stop()


StartAiosmtpd = Callable[..., tuple[int, Handler]]


def test_refused_recipients(flavour: str, aiosmtpd_server: StartAiosmtpd) -> None:
    port, handler = aiosmtpd_server()

    async def scenario() -> Any:
        async with client(flavour, port) as smtp:
            await smtp.login(USER, PASSWORD)
            some = await smtp.send_message(
                b"Subject: x\r\n\r\nhi\r\n",
                sender="a@example.com",
                recipients=["b@example.com", "nobody@example.com"],
            )
            with pytest.raises(RecipientsRefused) as refused:
                await smtp.send_message(
                    b"Subject: y\r\n\r\nhi\r\n",
                    sender="a@example.com",
                    recipients=["nobody@example.com", "nobody2@example.com"],
                )
            await smtp.noop()  # the session goes on
            return some, refused.value

    some, refused = run(flavour, scenario)
    assert some.accepted == ("b@example.com",)
    assert some.refused == {"nobody@example.com": (550, "5.1.1 No such user here")}
    assert set(refused.refused) == {"nobody@example.com", "nobody2@example.com"}
    assert [d[1] for d in handler.deliveries] == [["b@example.com"]]


def test_wrong_password(flavour: str, aiosmtpd_server: StartAiosmtpd) -> None:
    port, _ = aiosmtpd_server()

    async def scenario() -> None:
        async with client(flavour, port) as smtp:
            with pytest.raises(AuthenticationFailed) as failed:
                await smtp.login(USER, "wrong")
            assert failed.value.code == 535
            await smtp.login(USER, PASSWORD, mechanism="LOGIN")

    run(flavour, scenario)


def test_lmtp_replies_per_recipient(
    flavour: str, aiosmtpd_server: Callable[..., tuple[int, Handler]]
) -> None:
    port, _ = aiosmtpd_server(lmtp=True)

    async def scenario() -> Any:
        async with client(flavour, port, lmtp=True, starttls=False) as smtp:
            return await smtp.send_message(
                b"Subject: z\r\n\r\nhi\r\n",
                sender="a@example.com",
                recipients=["b@example.com", "c@example.com"],
            )

    result = run(flavour, scenario)
    assert {r: rep.code for r, rep in result.lmtp_replies.items()} == {
        "b@example.com": 250,
        "c@example.com": 452,
    }


def test_server_error_carries_code_and_text(
    flavour: str, aiosmtpd_server: Callable[..., tuple[int, Handler]]
) -> None:
    port, _ = aiosmtpd_server()

    async def scenario() -> None:
        async with client(flavour, port) as smtp:
            with pytest.raises(ServerError) as error:
                await smtp.send_message(
                    b"x\r\n", sender="refused@example.com", recipients=["b@example.com"]
                )
            assert (error.value.code, error.value.command) == (553, "MAIL")
            assert error.value.text == "5.7.1 Sender refused"
            assert not error.value.temporary
            await smtp.rset()  # the session goes on

    run(flavour, scenario)


def test_not_connected() -> None:
    smtp = blocking.SMTPClient("127.0.0.1", 1)
    with pytest.raises(Exception, match="not connected"):
        smtp.noop()
    ssl.create_default_context()  # (keeps the import used in every Python)


# --- Postfix's smtp-sink, and implicit TLS ---------------------------------------------------


@pytest.fixture
def smtp_sink_port(require_tool: RequireTool) -> Iterator[int]:
    import os
    import socket
    import subprocess
    import time

    binary = require_tool("smtp-sink")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(
        [binary, *user, f"127.0.0.1:{port}", "64"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "smtp-sink did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_pipelined_messages_to_smtp_sink(flavour: str, smtp_sink_port: int) -> None:
    async def scenario() -> list[int]:
        async with client(flavour, smtp_sink_port) as smtp:
            assert "PIPELINING" in smtp.extensions
            codes = []
            for i in range(20):
                result = await smtp.send_message(
                    b"Subject: %d\r\n\r\n.dot\r\n" % i,
                    sender="a@example.com",
                    recipients=["b@example.com", "c@example.com"],
                )
                codes.append(result.reply.code)
            await smtp.login("u", "p", mechanism="PLAIN")  # smtp-sink takes any
            return codes

    assert run(flavour, scenario) == [250] * 20


def test_implicit_tls(flavour: str, require_tool: RequireTool, tls_files: TLSFiles) -> None:
    require_tool("aiosmtpd", module=True)
    from aiosmtpd.controller import Controller

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert, tls_files.key)

    class Ephemeral(Controller):
        def _trigger_server(self) -> None:
            server: Any = self.server
            self.port = server.sockets[0].getsockname()[1]
            super()._trigger_server()  # type: ignore[no-untyped-call]

    handler = Handler()
    controller = Ephemeral(
        handler, hostname="127.0.0.1", port=0, ssl_context=context, server_hostname="localhost"
    )
    controller.start()
    try:

        async def scenario() -> Any:
            async with client(flavour, controller.port, tls=tls_files.client_context()) as smtp:
                assert smtp.tls_info is None or smtp.tls_info.version  # implicit: no STARTTLS
                return await smtp.send_message(
                    b"Subject: t\r\n\r\nx\r\n", sender="a@example.com", recipients=["b@x.org"]
                )

        assert run(flavour, scenario).accepted == ("b@x.org",)
        assert len(handler.deliveries) == 1
    finally:
        controller.stop()
