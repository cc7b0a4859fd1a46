"""A private Postfix as a complete MTA (smtpd -> queue -> virtual Maildir), for benchmarks.

Set up as ``/work/shared/PEERS.md`` says: its own ``config_directory``,
``queue_directory`` and ``data_directory`` inside a run directory, ``inet_interfaces =
127.0.0.1``, smtpd on a free port (the ``smtp inet`` line of a copied ``master.cf``,
every service unchrooted), virtual mailboxes delivered as the ``mail`` user, and a log
file through ``maillog_file`` and postlogd. Nothing touches ``/etc/postfix`` or the
system queue. Needs root (the master runs as root, as installed Postfix does).

`PrivatePostfix` is a context manager: ``start()`` runs ``postfix -c DIR start`` and waits
for the port; ``stop()`` runs ``postfix -c DIR stop`` and waits until no process of this
instance is left (they are the processes whose environment has ``MAIL_CONFIG=DIR``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

__all__ = ["PrivatePostfix", "free_port"]

POSTFIX = "/usr/sbin/postfix"
POSTMAP = "/usr/sbin/postmap"


def free_port() -> int:
    """A port free on 127.0.0.1 right now (Postfix needs it in its configuration)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def instance_pids(config_dir: Path) -> list[int]:
    """Live processes started for this configuration directory (MAIL_CONFIG in their env)."""
    marker = f"MAIL_CONFIG={config_dir}".encode()
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if marker in env:
            pids.append(int(entry.name))
    return pids


def master_cf(port: int) -> str:
    """The installed master.cf with smtpd on ``port`` and no service chrooted (a chroot
    would need copies of /etc files in the queue directory)."""
    lines = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = line.split()
        if line and not line[0].isspace() and not line.startswith("#") and len(fields) >= 8:
            if fields[0] == "smtp" and fields[1] == "inet":
                fields[0] = str(port)
            fields[4] = "n"
            line = " ".join(fields)
        lines.append(line)
    return "\n".join(lines) + "\n"


class PrivatePostfix:
    """Postfix accepting mail for ``user@domain`` on 127.0.0.1:``port`` into ``maildir``."""

    def __init__(self, run_dir: Path, *, user: str = "user", domain: str = "localhost") -> None:
        self.run_dir = run_dir
        self.config_dir = run_dir / "config"
        self.queue_dir = run_dir / "queue"
        self.data_dir = run_dir / "data"
        self.vmail = run_dir / "vmail"
        self.maildir = self.vmail / user / "Maildir"
        self.maillog = run_dir / "maillog"
        self.port = free_port()
        self.user, self.domain = user, domain
        self.started = False

    def _env(self) -> dict[str, str]:
        return {**os.environ, "MAIL_CONFIG": str(self.config_dir)}

    def _write_config(self) -> None:
        mail = pwd.getpwnam("mail")
        postfix_user = pwd.getpwnam("postfix")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # The user postfix must traverse the run directory (and the caller its parents:
        # mkdtemp makes directories 0700).
        os.chmod(self.run_dir, 0o755)
        for d in (self.config_dir, self.queue_dir, self.data_dir, self.vmail):
            d.mkdir(exist_ok=True)
        os.chown(self.data_dir, postfix_user.pw_uid, postfix_user.pw_gid)
        os.chown(self.vmail, mail.pw_uid, mail.pw_gid)
        main = {
            "compatibility_level": "3.6",
            "config_directory": str(self.config_dir),
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.run_dir),
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "postfix.bench.test",
            "mydomain": "bench.test",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "relayhost": "",
            "smtputf8_enable": "yes",
            "virtual_mailbox_domains": self.domain,
            "virtual_mailbox_base": str(self.vmail),
            "virtual_mailbox_maps": f"hash:{self.config_dir}/vmailbox",
            "virtual_minimum_uid": str(mail.pw_uid),
            "virtual_uid_maps": f"static:{mail.pw_uid}",
            "virtual_gid_maps": f"static:{mail.pw_gid}",
        }
        text = "".join(f"{key} = {value}\n" for key, value in main.items())
        (self.config_dir / "main.cf").write_text(text)
        (self.config_dir / "master.cf").write_text(master_cf(self.port))
        vmailbox = self.config_dir / "vmailbox"
        vmailbox.write_text(f"{self.user}@{self.domain} {self.user}/Maildir/\n")
        subprocess.run(
            [POSTMAP, "-c", str(self.config_dir), f"hash:{vmailbox}"], check=True, env=self._env()
        )

    def start(self) -> PrivatePostfix:
        if not os.path.exists(POSTFIX):
            raise SystemExit("postfix not found (Debian package postfix)")
        self._write_config()
        result = subprocess.run(
            [POSTFIX, "-c", str(self.config_dir), "start"],
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.started = True
        if result.returncode != 0:
            log = self.maillog.read_text() if self.maillog.exists() else ""
            raise RuntimeError(f"postfix start failed: {result.stdout}\n{log[-2000:]}")
        wait_for_port(self.port)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """``postfix stop``, then wait for every process of the instance (KILL at the end)."""
        if not self.started:
            return
        self.started = False
        subprocess.run(
            [POSTFIX, "-c", str(self.config_dir), "stop"],
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while instance_pids(self.config_dir):
            if time.monotonic() > deadline:
                for pid in instance_pids(self.config_dir):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, 9)
                time.sleep(0.2)
                break
            time.sleep(0.05)

    def __enter__(self) -> PrivatePostfix:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
