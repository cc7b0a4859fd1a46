"""A private Dovecot for interoperability tests: IMAP, POP3 and LMTP on 127.0.0.1.

`start_dovecot` writes its own configuration, passwd-file, ``base_dir``, ``state_dir``
and log under a run directory (a pytest temporary directory), picks free ports, starts
``dovecot -F`` as a child process and waits until every listener answers. The instance
never reads ``/etc/dovecot`` and binds only 127.0.0.1. `Dovecot.stop` terminates the
master and waits until every process of the instance is gone (children can outlive the
master for a while), killing stragglers, so no process is left behind.

Facts this relies on (Dovecot 2.3, run as root, as CI does):
- Dovecot refuses uid 0 for mail access: mail processes run as the ``mail`` user, which
  owns the Maildir; login processes run as ``dovenull``, internal ones as ``dovecot``.
- Those users must reach the passwd-file and the Maildir, so the run directory and its
  parents up to pytest's temporary root are made traversable (``o+x``; mode 0755 on the
  run directory itself).
- Dovecot assigns UIDs to files in ``new/`` in the order of the timestamp that starts
  their names, and takes INTERNALDATE from the file's mtime: `deliver` names and dates
  the files accordingly. A name without ``S=`` makes Dovecot measure sizes itself.

`unavailable_reason()` says why this machine cannot run it (not root, no Dovecot), for
the tests' ``require_tool`` convention (skip, or fail when interop is required).

Use (a session fixture, as in ``tests/interop/test_imap_message_dovecot.py``)::

    reason = unavailable_reason(("imap", "pop3", "lmtp"))
    if reason is not None:
        RequireTool(interop_required(config)).unavailable(reason)
    base = tmp_path_factory.mktemp("dovecot")
    deliver(base / "Maildir", [b"Subject: hi\\r\\n\\r\\nbody\\r\\n"])
    (base / "run").mkdir()
    server = start_dovecot(base / "run", base / "Maildir", protocols=("imap", "pop3", "lmtp"),
                           private_root=tmp_path_factory.getbasetemp().parent)
    try:
        ...  # server.host, server.ports["pop3"], server.user, server.password
    finally:
        server.stop()
        assert not instance_processes(server.instance)
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Dovecot",
    "DovecotError",
    "deliver",
    "free_port",
    "instance_processes",
    "start_dovecot",
    "unavailable_reason",
]

HOST = "127.0.0.1"
MAIL_USER = "mail"
LOGIN_USER = "dovenull"
INTERNAL_USER = "dovecot"
# The listener of each protocol: (service, inet_listener name).
_LISTENERS = {
    "imap": ("imap-login", "imap"),
    "pop3": ("pop3-login", "pop3"),
    "lmtp": ("lmtp", "lmtp"),
}
_SBIN = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])


class DovecotError(RuntimeError):
    """Dovecot did not start or did not stop; the message carries its log."""


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or shutil.which("dovecot", path=_SBIN)


def unavailable_reason(protocols: Iterable[str] = ("imap",)) -> str | None:
    """Why a private Dovecot cannot run here, or None if it can."""
    if dovecot_binary() is None:
        return "dovecot is not installed (Debian: dovecot-core dovecot-imapd ...)"
    if os.geteuid() != 0:
        return "a private Dovecot needs root here (its mail processes run as user mail)"
    for user in (MAIL_USER, LOGIN_USER, INTERNAL_USER):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"the system user {user!r} that Dovecot needs does not exist"
    for protocol in protocols:
        if protocol not in _LISTENERS:
            raise ValueError(f"unknown protocol {protocol!r}")
        if not Path(f"/usr/lib/dovecot/{protocol}").exists():
            return f"Dovecot's {protocol} server is not installed (dovecot-{protocol}d)"
    return None


def free_port() -> int:
    """A port that was free a moment ago (bind port 0, close): the caller retries if
    somebody else takes it before Dovecot binds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _make_traversable(directory: Path, private_root: Path | None) -> None:
    """Let the mail, login and internal users walk down to ``directory``: add o+x to it
    and to its parents up to ``private_root`` (pytest's own temporary root); above that
    every directory must already be traversable."""
    inside = True
    for d in [directory, *directory.parents]:
        mode = d.stat().st_mode
        if not mode & stat.S_IXOTH:
            if not inside:
                raise DovecotError(f"{d} is not traversable by Dovecot's users (o+x)")
            d.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
        if private_root is None or d == private_root:
            inside = False


def _children_of(pids: set[int]) -> set[int]:
    """Every live descendant of ``pids`` (read from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = list(pids)
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def instance_processes(instance: str) -> list[str]:
    """``ps`` lines of processes whose title names this instance (for leak checks)."""
    out = subprocess.run(
        ["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if f"dovecot-{instance}/" in line]


@dataclass
class Dovecot:
    """A running private Dovecot: where it listens, who may log in, its files."""

    ports: dict[str, int]
    user: str
    password: str
    maildir: Path
    run_dir: Path
    config: Path
    log: Path
    instance: str
    process: subprocess.Popen[bytes]
    host: str = HOST
    _children: set[int] = field(default_factory=set)

    @property
    def imap_port(self) -> int:
        return self.ports["imap"]

    def log_text(self) -> str:
        parts = [
            p.read_text(errors="replace")
            for p in (self.log, self.run_dir / "stdout.txt")
            if p.exists()
        ]
        return "\n".join(parts)

    def processes(self) -> set[int]:
        """The master and all its live descendants."""
        if self.process.poll() is not None:
            return {p for p in self._children if _alive(p)}
        found = _children_of({self.process.pid}) | {self.process.pid}
        self._children |= found - {self.process.pid}
        return found

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to the master (it stops its children), then wait for every process
        of the instance; whatever is still there after ``timeout`` gets SIGKILL."""
        self.processes()  # remember the children while the master can still name them
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(_alive(p) for p in self._children):
                return
            time.sleep(0.02)
        for pid in self._children:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _config(
    run_dir: Path,
    maildir: Path,
    ports: dict[str, int],
    instance: str,
    extra: str,
) -> str:
    protocols = " ".join(ports)
    lines = [
        f"instance_name = {instance}",
        f"base_dir = {run_dir / 'base'}",
        f"state_dir = {run_dir / 'state'}",
        f"log_path = {run_dir / 'dovecot.log'}",
        f"protocols = {protocols}",
        f"listen = {HOST}",
        "ssl = no",
        "disable_plaintext_auth = no",
        "auth_mechanisms = plain login",
        f"default_login_user = {LOGIN_USER}",
        f"default_internal_user = {INTERNAL_USER}",
        "first_valid_uid = 1",
        "first_valid_gid = 1",
        f"mail_location = maildir:{maildir}",
        "mail_fsync = never",
        "passdb {",
        "  driver = passwd-file",
        f"  args = {run_dir / 'passwd'}",
        "}",
        "userdb {",
        "  driver = static",
        f"  args = uid={MAIL_USER} gid={MAIL_USER} home={run_dir / 'home'}",
        "}",
    ]
    for protocol in ("imap", "pop3", "lmtp"):
        if protocol not in ports:
            continue
        service, listener = _LISTENERS[protocol]
        lines += [f"service {service} {{", f"  inet_listener {listener} {{"]
        lines += [f"    address = {HOST}", f"    port = {ports[protocol]}", "  }"]
        secure = {"imap": "imaps", "pop3": "pop3s"}.get(protocol)
        if secure:  # no TLS listener at all
            lines += [f"  inet_listener {secure} {{", "    port = 0", "  }"]
        lines += ["}"]
    return "\n".join(lines) + "\n" + extra


# What each service says first: a port that accepts but does not greet like this is not
# (yet) Dovecot's, e.g. somebody else's listener on a port that was free a moment ago.
_GREETINGS = {"imap": b"* OK", "pop3": b"+OK", "lmtp": b"220 "}


def _greets(protocol: str, port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as s:
            return s.recv(200).startswith(_GREETINGS[protocol])
    except OSError:
        return False


def _wait_ready(dovecot: Dovecot, timeout: float) -> str | None:
    """None once Dovecot greets on every port, or why it never will."""
    deadline = time.monotonic() + timeout
    pending = dict(dovecot.ports)
    while pending and time.monotonic() < deadline:
        if dovecot.process.poll() is not None:
            return f"dovecot exited with status {dovecot.process.returncode}"
        for protocol, port in list(pending.items()):
            if _greets(protocol, port):
                del pending[protocol]
        if pending:
            time.sleep(0.02)
    if dovecot.process.poll() is not None:
        return f"dovecot exited with status {dovecot.process.returncode}"
    return f"ports {sorted(pending.values())} never greeted" if pending else None


def start_dovecot(
    run_dir: Path,
    maildir: Path,
    *,
    protocols: Sequence[str] = ("imap",),
    user: str = "tester",
    password: str = "test password",
    extra_config: str = "",
    private_root: Path | None = None,
    attempts: int = 5,
    timeout: float = 15,
) -> Dovecot:
    """Start a private Dovecot serving ``maildir`` to one user (a ``{PLAIN}`` password).

    ``run_dir`` must exist and belong to this test run (a pytest tmp dir): the
    configuration, the passwd-file, ``base_dir``, ``state_dir`` and the log go there.
    ``maildir`` (created if missing) is handed to the ``mail`` user. Directories up to
    ``private_root`` (give pytest's ``tmp_path_factory.getbasetemp().parent``) get o+x
    so that Dovecot's users can reach both; above it they must be so already. If a port is taken
    between choosing it and Dovecot binding it, it starts again on new ports.

    Raises:
        DovecotError: it did not start after ``attempts`` tries (the log is in the message).
    """
    binary = dovecot_binary()
    if binary is None:
        raise DovecotError("dovecot is not installed")
    if not password or ":" in user or "\n" in password:
        raise ValueError("one plain user name and password on one passwd-file line")
    run_dir = run_dir.resolve()
    maildir = maildir.resolve()
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (run_dir / "home").mkdir(exist_ok=True)
    mail = pwd.getpwnam(MAIL_USER)
    for path in [maildir, *maildir.rglob("*"), run_dir / "home"]:
        os.chown(path, mail.pw_uid, mail.pw_gid)
    run_dir.chmod(0o755)
    root = private_root.resolve() if private_root is not None else None
    _make_traversable(run_dir, root)
    _make_traversable(maildir, root)
    passwd = run_dir / "passwd"
    passwd.write_text(f"{user}:{{PLAIN}}{password}\n")
    passwd.chmod(0o644)
    last_error = ""
    for attempt in range(attempts):
        ports = {protocol: free_port() for protocol in protocols}
        instance = f"mailproto-test-{os.getpid()}-{ports[protocols[0]]}"
        config = run_dir / "dovecot.conf"
        config.write_text(_config(run_dir, maildir, ports, instance, extra_config))
        log = run_dir / "dovecot.log"
        with open(run_dir / "stdout.txt", "wb") as out:
            # -F: stay in the foreground as our child, so we can wait for it.
            process = subprocess.Popen(
                [binary, "-F", "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        dovecot = Dovecot(
            ports=ports,
            user=user,
            password=password,
            maildir=maildir,
            run_dir=run_dir,
            config=config,
            log=log,
            instance=instance,
            process=process,
        )
        problem = _wait_ready(dovecot, timeout)
        if problem is None:
            dovecot.processes()
            return dovecot
        text = dovecot.log_text()
        dovecot.stop()
        last_error = f"attempt {attempt + 1}: {problem}\n{text}"
        if "Address already in use" not in text:
            break
    raise DovecotError(f"Dovecot did not start: {last_error}")


def deliver(
    maildir: Path,
    messages: Sequence[bytes],
    *,
    first_time: int = 1_700_000_000,
) -> list[Path]:
    """Write ``messages`` into ``maildir/new`` so that Dovecot gives them UIDs 1, 2, ...
    in this order: message i is named after the timestamp ``first_time + i``, which is
    also its mtime (its INTERNALDATE). Files are written as given, byte for byte."""
    mail = pwd.getpwnam(MAIL_USER)
    new = maildir / "new"
    new.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(messages):
        stamp = first_time + i
        path = new / f"{stamp}.M{i}P{os.getpid()}.mailproto"
        path.write_bytes(data)
        os.utime(path, (stamp, stamp))
        if os.geteuid() == 0:
            os.chown(path, mail.pw_uid, mail.pw_gid)
        paths.append(path)
    return paths
