"""Our whole mail system (MTA + MDA) against Postfix, aiosmtpd and smtp-sink, under smtp-source.

Run with ``python benchmarks/mta.py [--messages 3000] [--size 4096] [--sessions 1,20]``;
needs root, Postfix (``postfix``, ``smtp-source``, ``smtp-sink``) and aiosmtpd in the
venv. Everything listens on 127.0.0.1 and ephemeral ports, lives in one temporary
directory and is stopped and removed at the end, also on Ctrl-C, SIGTERM or an error.

Postfix's ``smtp-source`` sends ``--messages`` messages of ``--size`` octets of payload,
one connection per message (no ``-d``), to ``user@localhost``, with 1 and 20 concurrent
sessions (``--sessions``), into each target in turn, each one fresh:

- ours: `MailSystem` (listeners smtp + lmtp) in a child process (this script with
  ``--serve-ours``) as ``mailproto serve`` runs it by default (anyio flavour, inbound
  SMTP served by four child processes, the MDA's LMTP by one): inbound SMTP -> durable
  queue -> delivery runner -> LMTP -> our MDA's Maildir (``DATA/mail/user``);
- Postfix: a private instance (``mta_postfix.py``): smtpd -> queue -> virtual Maildir;
- aiosmtpd: a handler writing each message to a Maildir, fsync of the file and of
  new/ before the 250 (in a worker thread, so concurrent sessions overlap their fsyncs),
  in a child process (``--serve-aiosmtpd``);
- smtp-sink (``-u nobody``): accepts and discards, the ceiling of the load generator;
- ours-queue (only when named in ``--targets``): ours with the delivery runner never told
  of new entries, to tell the cost of SMTP + queue from that of delivery;
- ours-1proc (only when named): everything in one process on the blocking flavour
  (``MailSystem.start()`` with the library's defaults: no child processes);
- ours-smtpN (only when named, N = 0..8): ours with N inbound SMTP processes (0: the
  SMTP sessions in the main process).

Each target runs ``--rounds`` times (3), the rounds interleaved, and the medians are
shown: this machine's disk (its fsync latency) varies enough to move one run by 30%.
Every run has its own directory, kept until the end and placed in a block group of its
own where ext4 allows (`spread_directories`): on ext4 without a journal a file creation
skips every inode freed in the last minutes, so deleting one run's files before the next
would slow the next target down (Postfix measured 360 msgs/s that way, and 580-670 with
the runs kept apart). The same holds between two invocations: files deleted at the end
of one slow down the next for about a minute.
Per row: messages per second accepted (smtp-source wall time), seconds from the start
until the last message is in the Maildir (files in new/ and cur/ polled every 50 ms once
smtp-source is done), and the machine's CPU time over that span per message (all
processes: the target's, smtp-source's and this script's, from /proc/stat): what a
message costs, whatever the target did first, accepting or delivering. Ratios are
ours/peer for msgs/s and peer/ours for the seconds and the CPU, so higher is better for
all. Targets (issue 8): with 20 sessions, ours >= 1.0x Postfix and
>= 2x aiosmtpd in msgs/s accepted.

``--profile-children DIR`` has each listener child of ours (SMTP, LMTP) write its own
profile there (``<service>-<pid>.prof``, the ``--profile-clock``), for `pstats`.

``--profile FILE`` runs only our target (at every ``--sessions`` count, the last run's
profile kept) with cProfile on every thread of the child and prints the 25 functions
with the most cumulative and the most internal time; ``--profile-clock cpu`` measures each
thread's CPU time instead of wall time (waits, fsync included, then disappear).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import itertools
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mta_postfix
import report

USER, DOMAIN, SENDER = "user", "localhost", "sender@example.com"
TARGETS = ("ours", "postfix", "aiosmtpd", "smtp-sink")
# Diagnostics, run only when named in --targets.
EXTRA_TARGETS = ("ours-queue", "ours-1proc", *(f"ours-smtp{n}" for n in range(9)))
SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"


# --- our side, in a child process --------------------------------------------------------


def spread_directories(root: Path) -> None:
    """Ask ext4 to place each run's directory in a block group of its own (chattr +T, the
    "top of a directory hierarchy" flag), so that no target creates its files among
    inodes another target freed: on ext4 without a journal, every file creation skips
    the inodes freed in the last minutes one by one, which would charge a target for the
    files of the runs before it. Best effort: other file systems ignore it."""
    with contextlib.suppress(OSError):
        subprocess.run(["chattr", "+T", str(root)], capture_output=True, timeout=10, check=False)


def serve_ours(
    data_dir: str,
    profile: str | None,
    clock: str,
    deliver: bool = True,
    lmtp_process: bool = True,
    flavour: str = "anyio",
    smtp_processes: int = 4,
) -> None:
    """The child: our MailSystem; "SMTP_PORT" on stdout; stops at stdin EOF. Without
    ``deliver`` the runner is never told of new entries: SMTP and the queue alone. The
    defaults are those of `mailproto serve`: the MDA's LMTP in a process of its own
    (``lmtp_process``), inbound SMTP in ``smtp_processes`` more, the anyio flavour
    (``flavour``: "anyio" for ``serve_anyio``, "blocking" for ``start()``)."""
    from mailproto_adapters._profiling import profile_threads
    from mailproto_adapters.mda.users import ScryptParams, UserDB
    from mailproto_adapters.mta.runner import DeliveryRunner
    from mailproto_adapters.system import ListenerConfig, MailSystem, SystemConfig

    data = Path(data_dir)
    UserDB(data / "users.toml", scrypt=ScryptParams(n=2**4)).add(USER, "not used here")
    merged = profile_threads(clock) if profile else None
    if not deliver:
        # The one way in (submit() calls it): ours and the ids the SMTP children report.
        DeliveryRunner.submit_id = lambda self, entry_id, when=None: None  # type: ignore[method-assign]
    config = SystemConfig(
        data_dir=data,
        hostname="ours.bench.test",
        local_domains=(DOMAIN,),
        listeners=(
            ListenerConfig(service="lmtp"),
            ListenerConfig(service="smtp", max_connections=1024, max_per_ip=1024),
        ),
        lmtp_process=lmtp_process,
        smtp_processes=smtp_processes,
    )
    if flavour == "anyio":
        import anyio
        import anyio.from_thread
        import anyio.to_thread

        system = MailSystem(config)

        async def main() -> None:
            async with anyio.create_task_group() as tg:
                ports = await tg.start(system.serve_anyio)
                print(ports["smtp"], flush=True)
                await anyio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)
                system.stop_anyio()

        anyio.run(main)
    else:
        with MailSystem(config) as system:
            print(system.ports["smtp"], flush=True)
            sys.stdin.read()
    if merged is not None and profile is not None:
        stats = merged()
        if stats is not None:
            stats.dump_stats(profile)


# --- aiosmtpd, in a child process --------------------------------------------------------


def maildir_store(maildir: Path, data: bytes, seq: int) -> None:
    """Deliver as a Maildir MDA does: tmp/, fsync, rename into new/, fsync new/."""
    name = f"{time.time_ns()}.P{os.getpid()}Q{seq}.bench"
    tmp = maildir / "tmp" / name
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, maildir / "new" / name)
    dfd = os.open(maildir / "new", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def serve_aiosmtpd(maildir_path: str) -> None:
    """The child: aiosmtpd on an ephemeral port; the port on stdout; stops at stdin EOF."""
    from aiosmtpd.smtp import SMTP

    maildir = Path(maildir_path)
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    sequence = itertools.count(1)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            data, seq = envelope.original_content, next(sequence)
            await asyncio.to_thread(maildir_store, maildir, data, seq)
            return "250 2.0.0 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Handler(), hostname="aiosmtpd.bench.test"), "127.0.0.1", 0
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.to_thread(sys.stdin.read)
        server.close()
        await server.wait_closed()

    asyncio.run(main())


# --- the parent: targets, load, measurements ---------------------------------------------


class Child:
    """A child process printing its port on its first line and stopping at stdin EOF."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the parent only; it stops us cleanly
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip():
            self.stop()
            raise RuntimeError(f"child {args[0]} did not start")
        self.port = int(line)

    def stop(self, timeout: float = 60.0) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def sink() -> Iterator[int]:
    port = mta_postfix.free_port()
    args = [SMTP_SINK, *(["-u", "nobody"] if os.geteuid() == 0 else []), f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [*args, "256"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        mta_postfix.wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def target(
    name: str, run_dir: Path, *, profile: str | None = None, clock: str = "wall"
) -> Iterator[tuple[int, list[Path]]]:
    """Start a fresh ``name`` in ``run_dir``: (SMTP port, the directories to count)."""
    run_dir.mkdir(parents=True)
    if name in ("ours", *EXTRA_TARGETS):
        args = ["--serve-ours", str(run_dir)]
        if name == "ours-queue":
            args.append("--no-delivery")
        if name == "ours-1proc":
            args.append("--one-process")
        if name.startswith("ours-smtp"):
            args += ["--smtp-processes", name.removeprefix("ours-smtp")]
        if profile:
            args += ["--child-profile", profile, "--profile-clock", clock]
        child = Child(args)
        maildir = run_dir / "mail" / USER
        try:
            yield child.port, [] if name == "ours-queue" else [maildir / "new", maildir / "cur"]
        finally:
            child.stop()
    elif name == "postfix":
        with mta_postfix.PrivatePostfix(run_dir / "postfix", user=USER, domain=DOMAIN) as pf:
            yield pf.port, [pf.maildir / "new", pf.maildir / "cur"]
    elif name == "aiosmtpd":
        child = Child(["--serve-aiosmtpd", str(run_dir / "Maildir")])
        try:
            yield child.port, [run_dir / "Maildir" / "new"]
        finally:
            child.stop()
    else:
        with sink() as port:
            yield port, []


def count(dirs: list[Path]) -> int:
    total = 0
    for d in dirs:
        with contextlib.suppress(FileNotFoundError), os.scandir(d) as it:
            total += sum(1 for _ in it)
    return total


@dataclasses.dataclass(frozen=True)
class Run:
    rate: float  # msgs/s accepted
    seconds: float | None  # until the last is in the Maildir (None: not stored)
    cpu_ms: float  # the machine's CPU time over the run, per message


def machine_cpu() -> float:
    """Seconds of CPU the machine spent busy since boot (all CPUs: /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_load(port: int, dirs: list[Path], messages: int, size: int, sessions: int) -> Run:
    """smtp-source into ``port``: msgs/s accepted, seconds until all are in ``dirs``, and
    CPU per message."""
    command = [SMTP_SOURCE, "-4", "-M", "bench.test", "-m", str(messages), "-s", str(sessions),
               "-l", str(size), "-f", SENDER, "-t", f"{USER}@{DOMAIN}",
               f"127.0.0.1:{port}"]  # fmt: skip
    start, cpu = time.perf_counter(), machine_cpu()
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    accepted = time.perf_counter() - start
    if result.returncode != 0 or result.stdout.strip():
        raise RuntimeError(f"smtp-source: exit {result.returncode}: {result.stdout[-2000:]}")
    if not dirs:
        return Run(messages / accepted, None, (machine_cpu() - cpu) * 1000 / messages)
    deadline = time.monotonic() + 600
    while (n := count(dirs)) < messages:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {n} of {messages} messages delivered after 600 s")
        # Each look lists thousands of names: every 50 ms, so that the look does not
        # take the CPU the delivery it waits for needs (the last one is 50 ms late).
        time.sleep(0.05)
    delivered = time.perf_counter() - start
    used = machine_cpu() - cpu
    if n != messages:
        raise RuntimeError(f"{n} messages delivered, {messages} sent")
    return Run(messages / accepted, delivered, used * 1000 / messages)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"CPUs: {os.cpu_count()} ({model}); Python {platform.python_version()}; "
            f"{platform.system()} {platform.release()}; load average {load_average()}")  # fmt: skip


def ratio(mine: float | None, theirs: float | None, invert: bool = False) -> str:
    if mine is None or theirs is None or mine == 0 or theirs == 0:
        return "n/a"
    return f"{(theirs / mine if invert else mine / theirs):.2f}"


def median_run(runs: list[Run]) -> Run:
    """The medians of each column (the time to the Maildir of the runs that have one)."""
    times = [r.seconds for r in runs if r.seconds is not None]
    return Run(
        statistics.median(r.rate for r in runs),
        statistics.median(times) if times else None,
        statistics.median(r.cpu_ms for r in runs),
    )


def print_table(sessions: int, rows: dict[str, Run], runs: dict[str, list[Run]] | None) -> None:
    print(f"\n{sessions} session(s)" + (" (medians; every round's rate)" if runs else "") + ":")
    print(f"  {'target':<10} {'msgs/s accepted':>16} {'s to last in Maildir':>21} "
          f"{'CPU ms/msg':>11}")  # fmt: skip
    for name, run in rows.items():
        shown = "n/a" if run.seconds is None else f"{run.seconds:.2f}"
        every = ""
        if runs:
            every = "  (" + ", ".join(f"{r.rate:.0f}" for r in runs[name]) + ")"
        print(f"  {name:<10} {run.rate:16.0f} {shown:>21} {run.cpu_ms:11.2f}{every}")
    if "ours" in rows:
        ours = rows["ours"]
        for peer in ("postfix", "aiosmtpd"):
            if peer in rows:
                theirs = rows[peer]
                print(f"  ours/{peer}: msgs/s {ratio(ours.rate, theirs.rate)}x, "
                      f"Maildir time {ratio(ours.seconds, theirs.seconds, invert=True)}x, "
                      f"CPU per message {ratio(ours.cpu_ms, theirs.cpu_ms, invert=True)}x "
                      f"(higher is better)")  # fmt: skip


def print_profile(path: str) -> None:
    """Top 25 by cumulative and by internal time; paths shortened to the package or the
    standard library module (``mda/maildir.py``, ``threading.py``)."""
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    for key in ("cumulative", "tottime"):
        print(f"\n--- our child, top 25 by {key} (all threads merged) ---", file=out)
        stats.sort_stats(key).print_stats(25)
    text = out.getvalue()
    src = str(Path(__file__).resolve().parent.parent / "src") + os.sep
    stdlib = os.path.dirname(os.__file__) + os.sep
    print(
        text.replace(src + "mailproto_adapters" + os.sep, "").replace(src, "").replace(stdlib, "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--sessions", default="1,20", help="comma-separated session counts")
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of each target (interleaved); medians shown"
    )
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help="a subset of the default, or ours-queue (SMTP + queue, delivery never started)",
    )
    parser.add_argument("--profile", metavar="FILE", help="profile our child into FILE (pstats)")
    parser.add_argument("--profile-clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--profile-children", metavar="DIR", help="profiles of our children")
    parser.add_argument("--serve-ours", metavar="DATA_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--serve-aiosmtpd", metavar="MAILDIR", help=argparse.SUPPRESS)
    parser.add_argument("--no-delivery", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--smtp-processes", type=int, default=4, help=argparse.SUPPRESS)
    report.add_json_option(parser)
    args = parser.parse_args(argv)
    if args.serve_ours:
        serve_ours(
            args.serve_ours,
            args.child_profile,
            args.profile_clock,
            deliver=not args.no_delivery,
            lmtp_process=not args.one_process,
            flavour="blocking" if args.one_process else "anyio",
            smtp_processes=0 if args.one_process else args.smtp_processes,
        )
        return 0
    if args.serve_aiosmtpd:
        serve_aiosmtpd(args.serve_aiosmtpd)
        return 0
    targets = [t for t in args.targets.split(",") if t]
    if args.profile:  # our own targets only (ours by default)
        targets = [t for t in targets if t.startswith("ours")] or ["ours"]
    if unknown := set(targets) - set(TARGETS) - set(EXTRA_TARGETS):
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    sessions = [int(s) for s in args.sessions.split(",")]
    if os.geteuid() != 0 and "postfix" in targets:
        raise SystemExit("a private Postfix needs root")
    for tool in (SMTP_SOURCE, SMTP_SINK):
        if not os.path.exists(tool):
            raise SystemExit(f"{tool} not found (Debian package postfix)")
    # SIGTERM runs the finally blocks too (stops every target, removes the directory).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if args.profile_children:  # inherited by our server process, then by its children
        os.makedirs(args.profile_children, exist_ok=True)
        os.environ["MAILPROTO_PROFILE_DIR"] = os.path.abspath(args.profile_children)
        os.environ["MAILPROTO_PROFILE_CLOCK"] = args.profile_clock
    print(machine())
    print(f"smtp-source: {args.messages} messages, {args.size} octets of payload, one "
          f"connection per message, to {USER}@{DOMAIN}")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="mailproto-bench-mta-"))
    os.chmod(root, 0o755)  # Postfix's processes must traverse it
    spread_directories(root)
    results: dict[int, dict[str, Run]] = {}
    rounds = 1 if args.profile else args.rounds
    try:
        for s in sessions:
            runs: dict[str, list[Run]] = {}
            # Rounds interleave the targets, so that a slow spell of the machine (its
            # disk's fsync latency varies a lot) is shared out rather than hitting one.
            for n in range(rounds):
                for name in targets:
                    run_dir, clock = root / f"{name}-{s}-{n}", args.profile_clock
                    with target(name, run_dir, profile=args.profile, clock=clock) as (
                        port,
                        dirs,
                    ):
                        run = run_load(port, dirs, args.messages, args.size, s)
                    runs.setdefault(name, []).append(run)
                    # Run directories stay until the end: deleting a run's thousands of
                    # files would make file creation slower for the next target (ext4
                    # without a journal skips inodes freed in the last minutes).
                    shown = "n/a" if run.seconds is None else f"{run.seconds:.2f} s"
                    print(f"  ran {name} x{s} (round {n + 1}/{rounds}): {run.rate:.0f} msgs/s, "
                          f"{shown}, {run.cpu_ms:.2f} CPU ms/msg; load {load_average()}",
                          flush=True)  # fmt: skip
            rows = results.setdefault(s, {})
            for name, got in runs.items():
                rows[name] = median_run(got)
            print_table(s, rows, runs if rounds > 1 else None)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.profile:
        print_profile(args.profile)
    top = max(sessions)
    rows = results.get(top, {})
    if {"ours", "postfix", "aiosmtpd"} <= rows.keys():
        vs_postfix = rows["ours"].rate / rows["postfix"].rate
        vs_aiosmtpd = rows["ours"].rate / rows["aiosmtpd"].rate
        print(f"\ntargets at {top} sessions: ours/Postfix {vs_postfix:.2f}x (>= 1.0: "
              f"{'met' if vs_postfix >= 1.0 else 'NOT met'}), ours/aiosmtpd {vs_aiosmtpd:.2f}x "
              f"(>= 2.0: {'met' if vs_aiosmtpd >= 2.0 else 'NOT met'})")  # fmt: skip
    report.write_json(
        args.json,
        "mta",
        "MTA under smtp-source: ours (MailSystem) against Postfix, aiosmtpd, smtp-sink",
        json_rows(results, top),
        notes=[f"{args.messages} messages of {args.size} octets, one connection per message"],
        settings={"messages": args.messages, "size": args.size, "sessions": args.sessions},
    )
    return 0


def json_rows(results: dict[int, dict[str, Run]], top: int) -> list[report.Row]:
    """Ours against each peer: msgs/s accepted, seconds until the last is in the Maildir,
    the machine's CPU per message."""
    targets = {("postfix", top): 1.0, ("aiosmtpd", top): 2.0}
    out = []
    for s, rows in results.items():
        if "ours" not in rows:
            continue
        ours = rows["ours"]
        for peer in ("postfix", "aiosmtpd", "smtp-sink"):
            if peer not in rows:
                continue
            theirs = rows[peer]
            group = f"{s} session(s)"
            target = targets.get((peer, s))
            name = f"msgs/s accepted vs {peer}"
            row = report.Row(
                name, "msgs/s", ours.rate, peer, theirs.rate, target=target, group=group
            )
            out.append(row)
            if ours.seconds is not None and theirs.seconds is not None:
                name = f"seconds to last in Maildir vs {peer}"
                row = report.Row(name, "s", ours.seconds, peer, theirs.seconds, group=group)
                row.higher_is_better = False
                out.append(row)
            if peer != "smtp-sink":
                name = f"machine CPU ms per message vs {peer}"
                row = report.Row(name, "ms", ours.cpu_ms, peer, theirs.cpu_ms, group=group)
                row.higher_is_better = False
                out.append(row)
    return out


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # everything was stopped and removed by the finally blocks
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
