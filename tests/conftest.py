"""Shared pytest options and fixtures.

- ``require_tool``: find a third-party program or Python module an interop test needs.
  Missing, it skips the test; with ``MAILPROTO_REQUIRE_INTEROP=1`` in the environment
  (as ``.ci/run`` sets) or ``--require-interop`` on the command line, it fails it, so CI
  cannot go green by skipping every peer.
- ``start_sink(*args)`` / ``sink``: ``examples/smtp_sink.py`` as a subprocess on
  127.0.0.1 and an ephemeral port (``--port 0``; the port is read from its first line of
  output). One process per distinct command line serves the whole session and is always
  terminated at its end; each test sees only the files delivered during it, and fails
  if the sink printed a traceback meanwhile.
- ``tls_files``: a trustme CA and a server certificate for localhost/127.0.0.1 (with a
  CommonName, which fetchmail's own name check wants), as PEM files.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
SINK_SCRIPT = ROOT / "examples" / "smtp_sink.py"
# Postfix's tools live in sbin, which is not on every user's PATH.
_SBIN = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-interop",
        action="store_true",
        help="fail, instead of skip, tests whose third-party peer is missing "
        "(same as MAILPROTO_REQUIRE_INTEROP=1)",
    )


def interop_required(config: pytest.Config) -> bool:
    return os.environ.get("MAILPROTO_REQUIRE_INTEROP") == "1" or bool(
        config.getoption("--require-interop")
    )


class RequireTool:
    """``require_tool("swaks")`` -> the program's path; ``require_tool("aiosmtpd",
    module=True)`` -> the module's origin. Skips (or fails, when interop is required)
    if it is missing; ``unavailable(reason)`` does the same for any other shortfall."""

    def __init__(self, required: bool) -> None:
        self.required = required

    def __call__(self, name: str, *, module: bool = False) -> str:
        if module:
            try:
                spec = importlib.util.find_spec(name)
            except ImportError:
                spec = None
            if spec is not None:
                return spec.origin or name
            self.unavailable(f"Python module {name} is not installed")
        found = shutil.which(name) or shutil.which(name, path=_SBIN)
        if found is None:
            self.unavailable(f"{name} is not installed")
        return found

    def unavailable(self, reason: str) -> NoReturn:
        if self.required:
            pytest.fail(f"{reason} (interop tests are required here)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def require_tool(pytestconfig: pytest.Config) -> RequireTool:
    return RequireTool(interop_required(pytestconfig))


# --- TLS ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    """PEM files: the CA to trust, and the server's certificate chain and key."""

    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def args(self) -> tuple[str, ...]:
        """The command-line options that give the examples this certificate."""
        return ("--tls-cert", str(self.cert), "--tls-key", str(self.key))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> TLSFiles:
    RequireTool(interop_required(pytestconfig))("trustme", module=True)
    import trustme

    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", common_name="localhost")
    files = TLSFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    for blob in server.cert_chain_pems:
        blob.write_to_path(str(files.cert), append=True)
    server.private_key_pem.write_to_path(str(files.key))
    return files


# --- the example sink -----------------------------------------------------------------


@dataclass
class SinkProcess:
    """A running ``examples/smtp_sink.py``."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    log: Path  # its stdout and stderr

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate the sink: SIGTERM (it exits as on Ctrl-C), SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Sink:
    """One test's view of a sink: only the files delivered since the test took it."""

    host: str
    port: int
    directory: Path
    process: SinkProcess
    _before: frozenset[str]

    def _new(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if p.name not in self._before)

    def messages(self) -> list[bytes]:
        """The delivered files' contents, oldest first (names start with time_ns)."""
        return [p.read_bytes() for p in self._new() if p.suffix == ".eml"]

    def leftovers(self) -> list[Path]:
        """Files that are not delivered messages (temporary files left behind)."""
        return [p for p in self._new() if p.suffix != ".eml"]


def _wait_for_port(process: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        first = log.read_text(errors="replace").partition("\n")
        if first[1] and first[0].startswith("listening on "):
            return int(first[0].rpartition(":")[2])
        if process.poll() is not None:
            raise RuntimeError(f"smtp_sink exited at start:\n{log.read_text(errors='replace')}")
        time.sleep(0.02)
    raise RuntimeError(f"smtp_sink did not start listening:\n{log.read_text(errors='replace')}")


class SinkPool:
    """One sink process per distinct command line, shared by the whole session (a sink
    keeps no state between connections, and each test sees only its own files)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.running: dict[tuple[str, ...], SinkProcess] = {}

    def get(self, args: tuple[str, ...]) -> SinkProcess:
        sink = self.running.get(args)
        if sink is not None and sink.process.poll() is None:
            return sink
        n = len(self.running)
        mail_dir, log = self.directory / f"sink{n}", self.directory / f"sink{n}.log"
        command = [sys.executable, str(SINK_SCRIPT), "--host", "127.0.0.1", "--port", "0"]
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [*command, "--dir", str(mail_dir), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            port = _wait_for_port(process, log)
        except BaseException:
            process.kill()
            process.wait()
            raise
        self.running[args] = SinkProcess(port, mail_dir, process, log)
        return self.running[args]

    def stop_all(self) -> None:
        for sink in self.running.values():
            sink.stop()


@pytest.fixture(scope="session")
def sink_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SinkPool]:
    pool = SinkPool(tmp_path_factory.mktemp("sinks"))
    try:
        yield pool
    finally:
        pool.stop_all()


class StartSink:
    """``start_sink(*args)``: a sink with these extra command-line arguments."""

    def __init__(self, pool: SinkPool) -> None:
        self.pool = pool
        self.used: dict[Path, int] = {}  # log -> its length when this test began

    def __call__(self, *args: str) -> Sink:
        process = self.pool.get(args)
        self.used.setdefault(process.log, len(process.output()))
        before = frozenset(p.name for p in process.directory.iterdir())
        return Sink("127.0.0.1", process.port, process.directory, process, before)

    def crashes(self) -> list[str]:
        """What the sinks printed during this test, if it shows a traceback."""
        outputs = [log.read_text(errors="replace")[start:] for log, start in self.used.items()]
        return [out for out in outputs if "Traceback" in out]


@pytest.fixture
def start_sink(sink_pool: SinkPool) -> Iterator[StartSink]:
    starter = StartSink(sink_pool)
    yield starter
    crashed = starter.crashes()
    if crashed:
        pytest.fail("smtp_sink crashed:\n" + "\n".join(crashed), pytrace=False)


@pytest.fixture
def sink(start_sink: StartSink) -> Sink:
    return start_sink()
