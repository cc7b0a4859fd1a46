"""Run every benchmark in benchmarks/ and write docs/benchmarks.md with tables and plots.

``make bench`` runs ``python benchmarks/run_all.py``. Each benchmark runs in its own
process with ``--json FILE`` (see `report`); its printed output is kept too. One that
needs what this machine lacks (root, Postfix, Dovecot) is reported as skipped with the
reason; one that fails is reported as failed with the end of its output, and the others
still run. Then the document is written: the machine, a summary, and per benchmark a
table of ours against the peers measured in the same run, a PNG plot
(``docs/img/bench-NAME.png``, matplotlib's Agg backend) and the printed output.

Options: ``--quick`` (a short smoke run: fewer messages and runs; the document says
so), ``--quick-for NAME,...`` (only those quick), ``--only NAME,...``, ``--results DIR``
(keep each benchmark's JSON, output and status there; the document is made from every
benchmark found in DIR, so ``--only`` refreshes one of them), ``--render-only`` (no run,
just the document from ``--results``) and ``--timeout SECONDS`` per benchmark.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HELPERS = {"mailcorpus", "report", "run_all", "mta_postfix"}  # modules, not benchmarks


def _root_and(*tools: str) -> str | None:
    if os.geteuid() != 0:
        return "needs root (private Postfix/Dovecot instances)"
    for tool in tools:
        if not (shutil.which(tool) or Path(tool).exists()):
            return f"{tool} is not installed"
    return None


def _dovecot() -> str | None:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        dovecot_helpers: Any = importlib.import_module("dovecot_helpers")
    except ImportError as exc:
        return f"tests/dovecot_helpers.py cannot be imported: {exc}"
    reason: str | None = dovecot_helpers.unavailable_reason(("imap", "pop3"))
    return reason


def _aiosmtpd() -> str | None:
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        return "aiosmtpd is not installed in the venv"
    return None


def _clients_setup() -> tuple[list[str], str | None, list[str]]:
    sink = "/usr/sbin/smtp-sink"
    no_sink = None if (shutil.which("smtp-sink") or Path(sink).exists()) else "no smtp-sink"
    no_dovecot = _dovecot()
    if no_sink and no_dovecot:
        return [], f"{no_sink}; {no_dovecot}", []
    extra, notes = [], []
    if no_dovecot:
        extra.append("--skip-imap")
        notes.append(f"IMAP rows skipped: {no_dovecot}")
    if no_sink:
        extra.append("--skip-smtp")
        notes.append("SMTP rows skipped: smtp-sink (Debian package postfix) is not installed")
    return extra, None, notes


def _mta_setup() -> tuple[list[str], str | None, list[str]]:
    reason = _root_and("/usr/sbin/postfix", "/usr/sbin/smtp-source", "/usr/sbin/smtp-sink")
    return [], reason or _aiosmtpd(), []


def _mda_setup() -> tuple[list[str], str | None, list[str]]:
    return [], _dovecot(), []


def _none() -> tuple[list[str], str | None, list[str]]:
    return [], None, []


@dataclass
class Spec:
    """How to run one benchmark: full and quick arguments, and what it needs."""

    name: str
    quick: list[str] = field(default_factory=list)
    full: list[str] = field(default_factory=list)
    # -> (extra arguments, why it cannot run here or None, notes for the document)
    setup: Callable[[], tuple[list[str], str | None, list[str]]] = _none


# In the order they run: in-memory ones first, then those with servers.
SPECS = [
    Spec(
        "smtp_core", quick=["--runs", "2", "--txns", "200", "--txn-runs", "2", "--peer-txns", "100"]
    ),
    Spec("pop3_core", quick=["--runs", "3", "--size", "2000000"]),
    Spec("imap_core", quick=["--runs", "1", "--messages", "1000"]),
    Spec("imap_message", quick=["--runs", "2", "--generated", "100"]),
    Spec("system", quick=["--messages", "200"]),
    Spec("mta", quick=["--messages", "300", "--rounds", "1"], setup=_mta_setup),
    Spec(
        "clients",
        quick=["--messages", "200", "--runs", "1", "--imap-messages", "1000"],
        setup=_clients_setup,
    ),
    Spec("mda", quick=["--messages", "1000", "--runs", "1"], setup=_mda_setup),
    Spec("webmail", quick=["--messages", "1000", "--samples", "10", "--seconds", "2"]),
]


def discover() -> list[Spec]:
    """The known benchmarks present, then any other script here (run without options)."""
    present = {p.stem for p in HERE.glob("*.py")} - HELPERS
    specs = [spec for spec in SPECS if spec.name in present]
    known = {spec.name for spec in SPECS}
    specs += [Spec(name) for name in sorted(present - known)]
    return specs


# --- running ---------------------------------------------------------------------------


@dataclass
class Status:
    """What happened to one benchmark in a run."""

    name: str
    state: str  # "ok" | "failed" | "skipped"
    reason: str = ""
    seconds: float = 0.0
    args: list[str] = field(default_factory=list)
    quick: bool = False
    started: str = ""
    load_before: str = ""
    load_after: str = ""
    notes: list[str] = field(default_factory=list)
    json: bool = False  # it wrote machine-readable rows


def supports_json(name: str) -> bool:
    text = (HERE / f"{name}.py").read_text(encoding="utf-8")
    return "add_json_option" in text


def run_one(spec: Spec, results: Path, quick: bool, timeout: float) -> Status:
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    extra, reason, notes = spec.setup()
    status = Status(spec.name, "skipped", started=started, quick=quick, notes=notes)
    if reason:
        status.reason = reason
        print(f"== {spec.name}: skipped ({reason})", flush=True)
        return status
    out_json = results / f"{spec.name}.json"
    out_json.unlink(missing_ok=True)
    args = [*(spec.quick if quick else spec.full), *extra]
    status.args = list(args)
    if supports_json(spec.name):
        args += ["--json", str(out_json)]
    else:
        status.notes.append("this benchmark writes no machine-readable rows: see its output")
    print(f"== {spec.name}: {' '.join(status.args) or '(defaults)'}", flush=True)
    status.load_before = report.load_average()
    start = time.perf_counter()
    log = results / f"{spec.name}.log"
    with open(log, "w", encoding="utf-8") as out:
        try:
            proc = subprocess.run(
                [sys.executable, str(HERE / f"{spec.name}.py"), *args],
                cwd=HERE,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
    status.seconds = time.perf_counter() - start
    status.load_after = report.load_average()
    status.json = out_json.exists()
    if code is None:
        status.state, status.reason = "failed", f"timed out after {timeout:.0f} s"
    elif code != 0:
        status.state, status.reason = "failed", f"exit status {code}"
    else:
        status.state = "ok"
    print(f"   {status.state} in {status.seconds:.0f} s {status.reason}", flush=True)
    return status


def save_status(results: Path, status: Status) -> None:
    path = results / f"{status.name}.status.json"
    path.write_text(json.dumps(status.__dict__, indent=2) + "\n", encoding="utf-8")


def load_statuses(results: Path) -> list[Status]:
    order = {spec.name: i for i, spec in enumerate(SPECS)}
    out = []
    for path in results.glob("*.status.json"):
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        out.append(Status(**data))
    return sorted(out, key=lambda s: (order.get(s.name, len(order)), s.name))


# --- the document ----------------------------------------------------------------------


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def target_cell(row: report.Row) -> str:
    wanted = []
    if row.target is not None:
        wanted.append(f">= {row.target:g}x")
    if row.bound is not None:
        wanted.append(f"{'>=' if row.higher_is_better else '<='} {row.bound:g} {row.unit}")
    if not wanted:
        return "-"
    verdict = {None: "not measured", True: "met", False: "**NOT met**"}[row.met]
    return f"{', '.join(wanted)}: {verdict}"


def table(rows: Sequence[report.Row]) -> list[str]:
    out = [
        "| measurement | unit | ours | peer | peer's | ours/peer | better | target |",
        "|---|---|--:|---|--:|--:|--:|---|",
    ]
    group = None
    for row in rows:
        if row.group != group:
            group = row.group
            if group:
                out.append(f"| **{cell(group)}** | | | | | | | |")
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        score = row.score
        better = "-" if score is None else f"{score:.2f}x"
        direction = "" if row.higher_is_better else " (lower is better)"
        out.append(
            f"| {cell(row.name)} | {row.unit}{direction} | {fmt(row.ours)} | "
            f"{cell(row.peer or 'no peer')} | {fmt(row.peer_value)} | {ratio} | {better} | "
            f"{target_cell(row)} |"
        )
    return out


def plot(result: report.Result, path: Path) -> bool:
    """One small bar chart per row: ours beside the peer, in the row's unit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in result.rows if row.ours is not None]
    if not rows:
        return False
    cols = min(3, len(rows))
    lines = (len(rows) + cols - 1) // cols
    fig, axes = plt.subplots(lines, cols, figsize=(4.2 * cols, 3.1 * lines), squeeze=False)
    for ax, row in zip(axes.flat, rows, strict=False):
        labels, values, colours = ["ours"], [row.ours or 0.0], ["#2b6cb0"]
        if row.peer_value is not None:
            labels.append(textwrap.shorten(row.peer or "peer", 24, placeholder="..."))
            values.append(row.peer_value)
            colours.append("#a0aec0")
        bars = ax.bar(labels, values, color=colours)
        if row.bound is not None:  # an absolute target
            ax.axhline(row.bound, linestyle="--", color="black", linewidth=0.8)
        ax.bar_label(bars, labels=[fmt(v) for v in values], fontsize=8)
        title = f"{row.group}: {row.name}" if row.group else row.name
        ax.set_title("\n".join(textwrap.wrap(title, 44)[:3]), fontsize=8)
        better = "higher" if row.higher_is_better else "lower"
        ax.set_ylabel(f"{row.unit} ({better} is better)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.margins(y=0.15)
    for ax in list(axes.flat)[len(rows) :]:
        ax.axis("off")
    fig.suptitle(result.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_summary(results: Sequence[report.Result], path: Path) -> bool:
    """Every row with a peer: how many times better ours is (log scale), with targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [
        (f"{r.benchmark}: {row.name}" + (f" [{row.group}]" if row.group else ""), row)
        for r in results
        for row in r.rows
        if row.score is not None
    ]
    if not items:
        return False
    fig, ax = plt.subplots(figsize=(13, 0.32 * len(items) + 1.4))
    labels = [textwrap.shorten(label, 95, placeholder="...]") for label, _ in items]
    scores = [row.score or 0.0 for _, row in items]
    # Green: the target is met, or (without one) ours is better; red otherwise.
    good = [
        row.met if row.met is not None else s >= 1
        for s, (_, row) in zip(scores, items, strict=True)
    ]
    colours = ["#2f855a" if ok else "#c53030" for ok in good]
    ys = list(range(len(items)))[::-1]
    ax.barh(ys, scores, color=colours)
    for y, (_, row) in zip(ys, items, strict=True):
        if row.target is not None:
            ax.plot([row.target], [y], marker="|", color="black", markersize=14)
    ax.set_yticks(ys, labels, fontsize=7)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel(
        "times better than the peer (log; > 1: ours better; |: target)\n"
        "green: target met, or ours better where there is no target",
        fontsize=9,
    )
    fig.subplots_adjust(left=0.45, right=0.98, top=1 - 0.3 / fig.get_figheight(),
                        bottom=1.0 / fig.get_figheight())  # fmt: skip
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9_ -]", "", title.lower()).replace(" ", "-")


def render(results_dir: Path, doc: Path, img_dir: Path, machine: dict[str, str]) -> None:
    statuses = load_statuses(results_dir)
    img_dir.mkdir(parents=True, exist_ok=True)
    loaded: dict[str, report.Result] = {}
    for status in statuses:
        path = results_dir / f"{status.name}.json"
        if status.state == "ok" and path.exists():
            loaded[status.name] = report.read_json(path)
    rel = os.path.relpath(img_dir, doc.parent)
    machine = dict(machine)
    ran = sorted(s.started for s in statuses if s.started)
    if ran:  # when the benchmarks ran (several --only runs may share the results)
        now = datetime.datetime.now(datetime.UTC).strftime("%H:%M UTC")
        machine["date"] = f"benchmarks started from {ran[0]} to {ran[-1]}; written {now}"
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`benchmarks/run_all.py`), which runs every script in",
        "`benchmarks/` and measures ours and the peers in the same run on the same machine.",
        "Run one benchmark by hand with `python benchmarks/NAME.py` (see its docstring);",
        "`python benchmarks/run_all.py --quick` is a short smoke run,",
        "`--only NAME` runs one benchmark.",
        "",
        "How to read the tables: *ours/peer* is the plain ratio of the two figures;",
        "*better* turns it so that above 1 always means ours is better (for seconds and",
        "memory, where lower is better, it is peer/ours); *target* is the least *better*",
        "the project aims at. Absolute figures depend on the machine and on what else ran",
        "on it: the load average before and after each benchmark is given; compare the",
        "ratios, which were measured side by side.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {cell(value)} |" for key, value in machine.items()),
        "",
    ]
    if any(s.quick for s in statuses):
        quick = ", ".join(f"`{s.name}`" for s in statuses if s.quick)
        lines += [
            f"**Quick run** for {quick}: fewer messages and runs than the defaults, "
            "so those figures are noisier than a full run's.",
            "",
        ]
    lines += [
        "## Summary",
        "",
        "| benchmark | status | time | rows with a peer: ours better | targets met |",
        "|---|---|--:|--:|--:|",
    ]
    for status in statuses:
        result = loaded.get(status.name)
        state = status.state + (" (quick)" if status.quick and status.state == "ok" else "")
        if status.reason:
            state += f": {status.reason}"
        better = met = "-"
        if result is not None:
            compared = [row for row in result.rows if row.score is not None]
            better = f"{sum(row.score is not None and row.score >= 1 for row in compared)}"
            better += f" of {len(compared)}"
            with_target = [row for row in result.rows if row.met is not None]
            met = f"{sum(bool(row.met) for row in with_target)} of {len(with_target)}"
        title = result.title if result else status.name
        link = f"[{status.name}](#{anchor(f'{status.name}: {title}')})"
        seconds = f"{status.seconds:.0f} s" if status.state != "skipped" else "-"
        lines.append(f"| {link} | {cell(state)} | {seconds} | {better} | {met} |")
    lines.append("")
    if plot_summary(list(loaded.values()), img_dir / "bench-summary.png"):
        lines += [f"![ours against the peers, every row]({rel}/bench-summary.png)", ""]
    for status in statuses:
        result = loaded.get(status.name)
        title = result.title if result else status.name
        lines += [f"## {status.name}: {title}", ""]
        facts = [f"`benchmarks/{status.name}.py`: {status.state}"]
        if status.reason:
            facts[0] += f" ({status.reason})"
        if status.started:
            facts.append(f"started {status.started}")
        if status.state != "skipped":
            facts.append(f"{status.seconds:.0f} s")
        lines.append(", ".join(facts) + ".")
        if status.state != "skipped":
            args = " ".join(status.args) or "defaults"
            lines.append(f"Arguments: {args}{' (quick run)' if status.quick else ''}.")
            lines.append(f"Load average before: {status.load_before}; after: {status.load_after}.")
        lines.append("")
        notes = [*status.notes, *(result.notes if result else [])]
        lines += [f"- {note}" for note in notes]
        if notes:
            lines.append("")
        if result is not None and result.rows:
            lines += [*table(result.rows), ""]
            image = img_dir / f"bench-{status.name}.png"
            if plot(result, image):
                lines += [f"![{cell(result.title)}]({rel}/{image.name})", ""]
        log = results_dir / f"{status.name}.log"
        if log.exists():
            text = log.read_text(encoding="utf-8", errors="replace").rstrip()
            if status.state == "failed":
                text = "\n".join(text.splitlines()[-60:])
            lines += [
                "<details><summary>printed output</summary>",
                "",
                "```text",
                text.replace("```", "'''"),
                "```",
                "",
                "</details>",
                "",
            ]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {doc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run of each")
    parser.add_argument("--quick-for", default="", metavar="NAME,...", help="only these quick")
    parser.add_argument("--only", default="", metavar="NAME,...", help="run only these")
    parser.add_argument("--results", metavar="DIR", help="keep JSON, logs and status here")
    parser.add_argument("--render-only", action="store_true", help="no run; needs --results")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per benchmark")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--img-dir", default=str(ROOT / "docs" / "img"))
    args = parser.parse_args(argv)
    specs = discover()
    names = {spec.name for spec in specs}
    only = [n for n in args.only.split(",") if n]
    quick_for = {n for n in args.quick_for.split(",") if n}
    if unknown := (set(only) | quick_for) - names:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))} (have: {sorted(names)})")
    if args.render_only and not args.results:
        parser.error("--render-only needs --results DIR")
    temporary = None
    if args.results:
        results = Path(args.results)
        results.mkdir(parents=True, exist_ok=True)
    else:
        temporary = tempfile.mkdtemp(prefix="mailproto-bench-results-")
        results = Path(temporary)
    machine = report.machine()
    try:
        if not args.render_only:
            for spec in specs:
                if only and spec.name not in only:
                    continue
                quick = args.quick or spec.name in quick_for
                save_status(results, run_one(spec, results, quick, args.timeout))
        render(results, Path(args.output), Path(args.img_dir), machine)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
