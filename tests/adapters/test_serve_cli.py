"""``mailproto serve`` as a real process: banner, demo user, mail in over SMTP and out over
IMAP and POP3, graceful SIGTERM; on both flavours. And ``mailproto check-config``."""

from __future__ import annotations

import imaplib
import poplib
import queue
import re
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailproto_adapters.cli import main

SERVICES = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps", "lmtp")
LISTENER = re.compile(r"^  (\w+)\s+127\.0\.0\.1:(\d+)\s")
PASSWORD = re.compile(r"demo account .*password (\S+)$")
WEBMAIL = re.compile(r"^webmail: http://127\.0\.0\.1:(\d+)/")


def write_config(path: Path) -> Path:
    """Every listener on 127.0.0.1 port 0 (the kernel picks free ports)."""
    listeners = "".join(
        f'[[listeners]]\nservice = "{s}"\nhost = "127.0.0.1"\nport = 0\n\n' for s in SERVICES
    )
    path.write_text(
        '[server]\nhostname = "localhost"\ngrace = "2s"\nlog_level = "warning"\n\n'
        + listeners
        + '[delivery]\nmin_backoff = "0.2s"\nmax_backoff = "1s"\n'
        + "\n[webmail]\nport = 0\n"
    )
    return path


class Server:
    """A ``mailproto serve`` child process and what its banner said."""

    def __init__(self, config: Path, data: Path, flavour: str, log: Path) -> None:
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mailproto_adapters",
                "serve",
                "--config",
                str(config),
                "--data",
                str(data),
                "--flavour",
                flavour,
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.banner: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + 15
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise AssertionError(f"no banner: {self.banner} {log.read_text()}")
            self.banner.append(line)
            if line.startswith("ready"):
                break
        self.ports = {
            m[1]: int(m[2]) for m in (LISTENER.match(x) for x in self.banner) if m is not None
        }
        passwords = [m[1] for m in (PASSWORD.search(x) for x in self.banner) if m is not None]
        self.password = passwords[0] if passwords else None

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def terminate(
        self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0
    ) -> tuple[int, float]:
        """Send ``sig``; the exit status and how long it took."""
        started = time.monotonic()
        self.process.send_signal(sig)
        status = self.process.wait(timeout)
        took = time.monotonic() - started
        self.stop()
        return status, took

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def wait_for_imap(port: int, password: str, count: int) -> list[bytes]:
    deadline = time.monotonic() + 15
    while True:
        client = imaplib.IMAP4("127.0.0.1", port)
        try:
            client.login("demo", password)
            _, data = client.select("INBOX", readonly=True)
            if int(data[0] or 0) >= count:
                out = []
                for n in range(1, count + 1):
                    _, fetched = client.fetch(str(n), "(BODY.PEEK[])")
                    item = fetched[0]
                    assert isinstance(item, tuple)
                    out.append(item[1])
                return out
        finally:
            client.logout()
        assert time.monotonic() < deadline, "the message did not arrive"
        time.sleep(0.1)


def send(port: int, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "someone@example.org"
    message["To"] = "demo@localhost"
    message["Subject"] = subject
    message.set_content("hello from smtplib\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message)


@pytest.mark.parametrize("flavour", ["anyio", "blocking"])
def test_serve_end_to_end(tmp_path: Path, servers: list[Server], flavour: str) -> None:
    config = write_config(tmp_path / "mailproto.toml")
    data = tmp_path / "data"
    server = Server(config, data, flavour, tmp_path / "stderr.log")
    servers.append(server)
    assert set(server.ports) == set(SERVICES)
    assert all(port > 0 for port in server.ports.values())
    assert server.password is not None
    assert any("TLS certificate" in line and "self-signed" in line for line in server.banner)
    assert (data / "tls" / "cert.pem").is_file()

    send(server.ports["smtp"], f"over {flavour}")
    (message,) = wait_for_imap(server.ports["imap"], server.password, 1)
    assert b"Subject: over " + flavour.encode() in message

    pop = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    try:
        pop.user("demo")
        pop.pass_(server.password)
        count, _ = pop.stat()
        assert count == 1
        _, lines, _ = pop.retr(1)
        assert b"hello from smtplib" in b"\r\n".join(lines)
    finally:
        pop.quit()

    # Implicit TLS with the self-signed certificate made on first start.
    context = ssl.create_default_context(cafile=str(data / "tls" / "cert.pem"))
    imaps = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=context)
    imaps.logout()

    # A session still open at shutdown gets server.grace (2 s here), then is cut.
    idle = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    idle.login("demo", server.password)
    status, took = server.terminate()
    assert status == 0, (tmp_path / "stderr.log").read_text()
    assert took < 8
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        idle.noop()
    idle.shutdown()

    # The second start reuses the data: no new demo password, the certificate kept.
    cert = (data / "tls" / "cert.pem").read_bytes()
    again = Server(config, data, flavour, tmp_path / "stderr.log")
    servers.append(again)
    assert again.password is None
    assert not any("password" in line for line in again.banner)
    assert (data / "tls" / "cert.pem").read_bytes() == cert
    send(again.ports["smtp"], "second")
    assert len(wait_for_imap(again.ports["imap"], server.password, 2)) == 2
    status, _ = again.terminate(signal.SIGINT)  # Ctrl-C
    assert status == 0


def test_serve_config_error_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[listeners]]\nservice = "lmtp"\nport = 70000\n')
    assert main(["serve", "--config", str(bad), "--data", str(tmp_path / "d")]) == 78
    err = capsys.readouterr().err
    assert "mailproto: config error: listeners[0].port: must be 0..65535" in err
    assert "got 70000" in err
    assert not (tmp_path / "d").exists()


def test_serve_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--flavour", "gevent"]) == 64
    assert "invalid choice" in capsys.readouterr().err
    assert main(["serve", "--help"]) == 0
    assert "--flavour" in capsys.readouterr().out


def test_check_config_prints_the_effective_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "relay-password"
    secret.write_text("hunter2 secret\n")
    config = tmp_path / "c.toml"
    config.write_text(
        '[domains]\nlocal = ["example.org"]\n'
        "[delivery.smarthost]\n"
        f'host = "relay.example.net:587"\nusername = "me"\npassword_file = "{secret}"\n'
    )
    assert main(["check-config", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert 'local = ["example.org"]' in out
    assert "[delivery.smarthost]" in out
    assert 'username = "me"' in out
    assert 'password = "********"' in out
    assert "hunter2" not in out
    assert 'service = "imaps"' in out  # the default listeners filled in
    assert "port = 2993" in out


def test_check_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[server]\nhostnam = "x"\n[limits]\nmax_recipients = 0\n')
    assert main(["check-config", "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert "mailproto: config error: server.hostnam: unknown key" in err
    assert "mailproto: config error: limits.max_recipients: must be 1..100000, got 0" in err
    assert main(["check-config", "--config", str(tmp_path / "missing.toml")]) == 1
    assert "cannot read it" in capsys.readouterr().err
    config.write_text("[server\n")
    assert main(["check-config", "--config", str(config)]) == 1
    assert "not valid TOML" in capsys.readouterr().err


def test_check_config_loads_the_configured_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[tls]\ncert = "{tmp_path}/nope.pem"\nkey = "{tmp_path}/nope.key"\n')
    assert main(["check-config", "--config", str(config)]) == 1
    assert "config error: tls.cert: cannot load" in capsys.readouterr().err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "check-config", "user", "queue"):
        assert f"\n  {command} " in out
