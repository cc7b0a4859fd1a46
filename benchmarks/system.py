"""The whole system: messages per second from submission to IMAP-visible, and idle memory.

Run with ``python benchmarks/system.py [--messages 1000] [--senders 4]``. Everything
listens on 127.0.0.1 and ephemeral ports inside one temporary directory, removed at the
end (also on an error, Ctrl-C or SIGTERM).

- ours: `MailSystem` (listeners submission, lmtp, imap; the anyio flavour, as ``mailproto
  serve`` runs it, and the blocking flavour) in a child process (this script with
  ``--serve``), so that the load generator does not share its interpreter and its memory
  can be read from ``/proc``: submission (RFC 6409) with AUTH PLAIN (RFC 4954) -> durable
  queue -> delivery runner -> LMTP (RFC 2033) -> our MDA's Maildir -> IMAP.
- peer (root only, when installed): a private Postfix (``mta_postfix.py``) whose smtpd
  authenticates through Dovecot's auth socket (``smtpd_sasl_type = dovecot``) and hands
  every message to a private Dovecot over LMTP (``virtual_transport = lmtp:inet:...``),
  which the same IMAP poll watches. The Dovecot of ``tests/dovecot_helpers.py`` runs with
  ``mail_fsync = never``: it does less work per message than ours, which fsyncs.

The load: ``--senders`` threads in this process, each with one `smtplib` connection
(AUTH PLAIN as the recipient user), send ``--messages`` messages in all to that user;
meanwhile one `imaplib` connection asks ``STATUS INBOX (MESSAGES)`` every 10 ms until all
are there. Figures: messages per second accepted (every 250 received) and messages per
second until the last is visible over IMAP, both from the first connection.

Memory: the server's RSS (``VmRSS``) once started and idle, and again idle after the load
(2 s after the last message was seen). The peer is many processes sharing pages, so
the row comparing both sums PSS (``/proc/PID/smaps_rollup``) over every process: our
one process against Postfix's and Dovecot's.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mta_postfix
import report

USER, PASSWORD, DOMAIN = "tester", "test password", "localhost"
ADDRESS = f"{USER}@{DOMAIN}"
POLL = 0.01
SETTLE = 2.0  # seconds idle before a memory reading


def message(n: int) -> bytes:
    """A plausible 2 KB text message, numbered."""
    lines = [
        f"From: Tester <{ADDRESS}>",
        f"To: Tester <{ADDRESS}>",
        f"Subject: benchmark message {n}",
        f"Message-ID: <bench.{n}.{os.getpid()}@example.test>",
        "Date: Tue, 4 Jun 2024 10:17:42 +0200",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
        "",
    ]
    lines += [f"Line {i:02d} of message {n}, some ordinary text to read. " * 2 for i in range(24)]
    return ("\r\n".join(lines) + "\r\n").encode()


# --- our side, in a child process ------------------------------------------------------


def serve(data_dir: str, flavour: str) -> None:
    """The child: MailSystem; its ports as JSON on stdout; stops at stdin EOF."""
    import anyio

    from mailproto_adapters.mda.users import ScryptParams, UserDB
    from mailproto_adapters.system import ListenerConfig, MailSystem, SystemConfig

    data = Path(data_dir)
    UserDB(data / "users.toml", scrypt=ScryptParams(n=2**4)).add(USER, PASSWORD)
    config = SystemConfig(
        data_dir=data,
        hostname="ours.bench.test",
        local_domains=(DOMAIN,),
        allow_plaintext=True,
        listeners=tuple(
            ListenerConfig(service=s, max_connections=1024, max_per_ip=1024)
            for s in ("lmtp", "submission", "imap")
        ),
    )
    system = MailSystem(config)
    if flavour == "blocking":
        with system.start():
            print(json.dumps(system.ports), flush=True)
            sys.stdin.read()
        return

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            ports = await tg.start(system.serve_anyio)
            print(json.dumps(ports), flush=True)
            await anyio.to_thread.run_sync(sys.stdin.read)
            system.stop_anyio()

    anyio.run(main)


class Ours:
    """Our MailSystem in a child process."""

    def __init__(self, data_dir: Path, flavour: str) -> None:
        data_dir.mkdir(parents=True)
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(data_dir), "--flavour", flavour],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the parent only; it stops us cleanly
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip():
            self.stop()
            raise RuntimeError("our MailSystem did not start")
        self.ports: dict[str, int] = json.loads(line)

    def pids(self) -> list[int]:
        return [self.process.pid]

    def stop(self, timeout: float = 60.0) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the peer: Postfix -> LMTP -> Dovecot ----------------------------------------------


def dovecot_helpers() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    return importlib.import_module("dovecot_helpers")


def peer_unavailable() -> str | None:
    """Why Postfix + Dovecot cannot run here, or None."""
    if os.geteuid() != 0:
        return "Postfix + Dovecot need root here"
    if not os.path.exists(mta_postfix.POSTFIX):
        return "postfix is not installed"
    reason: str | None = dovecot_helpers().unavailable_reason(("imap", "lmtp"))
    return reason


class PostfixToDovecot(mta_postfix.PrivatePostfix):
    """Postfix with SASL through Dovecot's auth socket, delivering to Dovecot by LMTP."""

    def __init__(self, run_dir: Path, lmtp_port: int, auth_socket: Path) -> None:
        super().__init__(run_dir, user=USER, domain=DOMAIN)
        self.lmtp_port, self.auth_socket = lmtp_port, auth_socket

    def _write_config(self) -> None:
        super()._write_config()
        extra = {
            "virtual_transport": f"lmtp:inet:127.0.0.1:{self.lmtp_port}",
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": str(self.auth_socket),
            "smtpd_recipient_restrictions": "permit_sasl_authenticated, reject",
        }
        with open(self.config_dir / "main.cf", "a", encoding="utf-8") as f:
            f.writelines(f"{key} = {value}\n" for key, value in extra.items())


class Peer:
    """A private Dovecot (IMAP, LMTP, auth socket) behind a private Postfix."""

    def __init__(self, run_dir: Path) -> None:
        helpers = dovecot_helpers()
        (run_dir / "dovecot").mkdir(parents=True)
        auth_socket = run_dir / "dovecot" / "auth-postfix"
        extra = (
            "auth_username_format = %Ln\n"
            f"service auth {{\n  unix_listener {auth_socket} {{\n    mode = 0666\n  }}\n}}\n"
        )
        self.dovecot = helpers.start_dovecot(
            run_dir / "dovecot",
            run_dir / "Maildir",
            protocols=("imap", "lmtp"),
            user=USER,
            password=PASSWORD,
            extra_config=extra,
            private_root=run_dir.parent,
        )
        try:
            self.postfix = PostfixToDovecot(
                run_dir / "postfix", self.dovecot.ports["lmtp"], auth_socket
            ).start()
        except BaseException:
            self.dovecot.stop()
            raise
        self.ports = {"submission": self.postfix.port, "imap": self.dovecot.ports["imap"]}

    def pids(self) -> list[int]:
        return sorted(
            set(mta_postfix.instance_pids(self.postfix.config_dir)) | self.dovecot.processes()
        )

    def stop(self) -> None:
        try:
            self.postfix.stop()
        finally:
            self.dovecot.stop()


# --- the load and the measurements -------------------------------------------------------


def pss_kib(pids: list[int]) -> int:
    """Sum of the proportional set sizes of ``pids`` (shared pages counted once)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
    return total


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += report.rss_kib(pid)
    return total


def inbox_count(imap: Any) -> int:
    _, data = imap.status("INBOX", "(MESSAGES)")
    text = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
    return int(text.rsplit("MESSAGES", 1)[1].strip(" ()"))


def send_all(port: int, messages: int, senders: int) -> float:
    """Send ``messages`` over ``senders`` connections; seconds until every 250."""
    errors: list[BaseException] = []
    share = [messages // senders + (i < messages % senders) for i in range(senders)]
    offsets = [sum(share[:i]) for i in range(senders)]

    def sender(first: int, count: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
                smtp.login(USER, PASSWORD)
                for n in range(first, first + count):
                    refused = smtp.sendmail(ADDRESS, [ADDRESS], message(n))
                    if refused:
                        raise RuntimeError(f"refused: {refused}")
        except BaseException as exc:
            errors.append(exc)

    start = time.perf_counter()
    workers = [
        threading.Thread(target=sender, args=(first, count))
        for first, count in zip(offsets, share, strict=True)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


@dataclass
class Measured:
    accepted: float  # msgs/s until the last 250
    visible: float  # msgs/s until the last is visible over IMAP
    rss_fresh: int
    rss_after: int
    pss_fresh: int
    pss_after: int


def measure(
    ports: dict[str, int], pids: Callable[[], list[int]], messages: int, senders: int
) -> Measured:
    import imaplib

    time.sleep(SETTLE)
    rss_fresh, pss_fresh = rss_kib(pids()), pss_kib(pids())
    imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=120)
    try:
        imap.login(USER, PASSWORD)
        before = inbox_count(imap)
        start = time.perf_counter()
        sent: list[float] = []
        failed: list[BaseException] = []

        def load() -> None:
            try:
                sent.append(send_all(ports["submission"], messages, senders))
            except BaseException as exc:
                failed.append(exc)

        loader = threading.Thread(target=load)
        loader.start()
        deadline = time.monotonic() + 600
        while (seen := inbox_count(imap) - before) < messages:
            if failed:
                loader.join()
                raise failed[0]
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {seen} of {messages} messages visible after 600 s")
            time.sleep(POLL)
        visible = time.perf_counter() - start
        loader.join()
        if failed:
            raise failed[0]
        if seen != messages:
            raise RuntimeError(f"{seen} messages visible, {messages} sent")
    finally:
        with contextlib.suppress(Exception):
            imap.logout()
    time.sleep(SETTLE)
    return Measured(
        accepted=messages / sent[0],
        visible=messages / visible,
        rss_fresh=rss_fresh,
        rss_after=rss_kib(pids()),
        pss_fresh=pss_fresh,
        pss_after=pss_kib(pids()),
    )


@contextlib.contextmanager
def started(name: str, run_dir: Path) -> Iterator[Ours | Peer]:
    server: Ours | Peer
    if name == "peer":
        server = Peer(run_dir)
    else:
        server = Ours(run_dir, name.removeprefix("ours-"))
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument(
        "--targets", default="ours-anyio,ours-blocking,peer", help="comma-separated"
    )
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--flavour", choices=("anyio", "blocking"), default="anyio")
    report.add_json_option(parser)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.flavour)
        return 0
    targets = [t for t in args.targets.split(",") if t]
    notes: list[str] = []
    if "peer" in targets and (reason := peer_unavailable()):
        targets.remove("peer")
        notes.append(f"no peer: {reason}")
        print(f"no peer: {reason}")
    # SIGTERM runs the finally blocks too (stops every server, removes the directory).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    print(f"{report.cpu_model()} x {os.cpu_count()}; load average {report.load_average()}")
    print(f"{args.messages} messages of {len(message(0))} octets over {args.senders} "
          f"submission connections (AUTH PLAIN), to one user's INBOX")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="mailproto-bench-system-"))
    os.chmod(root, 0o755)  # Postfix's and Dovecot's users must traverse it
    results: dict[str, Measured] = {}
    try:
        for name in targets:
            with started(name, root / name) as server:
                results[name] = measure(server.ports, server.pids, args.messages, args.senders)
            m = results[name]
            print(f"  ran {name}: {m.accepted:.0f} msgs/s accepted, {m.visible:.0f} msgs/s "
                  f"IMAP-visible; load {report.load_average()}", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'target':<14} {'accepted/s':>11} {'visible/s':>10} {'RSS fresh':>10} "
          f"{'RSS after':>10} {'PSS fresh':>10} {'PSS after':>10}  (KiB)")  # fmt: skip
    for name, m in results.items():
        print(f"{name:<14} {m.accepted:11.0f} {m.visible:10.0f} {m.rss_fresh:10,} "
              f"{m.rss_after:10,} {m.pss_fresh:10,} {m.pss_after:10,}")  # fmt: skip
    report.write_json(
        args.json,
        "system",
        "Whole system: submission -> queue -> LMTP -> Maildir -> IMAP",
        json_rows(results),
        notes=[
            *notes,
            f"{args.messages} messages of {len(message(0))} octets, {args.senders} "
            "smtplib senders with AUTH PLAIN, IMAP STATUS polled every 10 ms",
            "peer: Postfix (SASL via Dovecot) -> LMTP -> Dovecot, Dovecot with "
            "mail_fsync = never; memory rows compare PSS summed over every process",
        ],
        settings={"messages": args.messages, "senders": args.senders},
    )
    return 0


def json_rows(results: dict[str, Measured]) -> list[report.Row]:
    peer = results.get("peer")
    peer_name = "Postfix + Dovecot" if peer else None
    out: list[report.Row] = []
    for name, m in results.items():
        if name == "peer":
            continue
        group = f"ours: MailSystem, {name.removeprefix('ours-')} flavour"
        figures: list[tuple[str, str, float, float | None]] = [
            ("submission -> IMAP-visible", "msgs/s", m.visible, peer.visible if peer else None),
            ("submission accepted (250)", "msgs/s", m.accepted, peer.accepted if peer else None),
            ("idle memory, fresh (PSS, all processes)", "KiB", m.pss_fresh,
             peer.pss_fresh if peer else None),
            ("idle memory after the load (PSS)", "KiB", m.pss_after,
             peer.pss_after if peer else None),
            ("idle memory, fresh (RSS of our process)", "KiB", m.rss_fresh, None),
            ("idle memory after the load (RSS)", "KiB", m.rss_after, None),
        ]  # fmt: skip
        for label, unit, ours, theirs in figures:
            row = report.Row(label, unit, ours, peer_name if theirs else None, theirs, group=group)
            row.higher_is_better = unit != "KiB"
            out.append(row)
    return out


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # everything was stopped and removed by the finally blocks
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
