"""What every benchmark emits besides its printed table: machine-readable result rows.

Imported by plain name (``import report``) from the scripts beside it. Each benchmark
adds ``--json FILE`` with `add_json_option` and, at the end, calls `write_json` with its
`Row` list; `run_all.py` collects the files and writes ``docs/benchmarks.md``. The printed
output of a benchmark does not change: the JSON is written only when asked for.

A row compares one figure of ours with one peer (or none). ``higher_is_better`` says how
to read the unit (msgs/s: yes; seconds, KiB: no); `Row.score` turns the pair into one
number where above 1 always means ours is better, and ``target`` is the least score the
project aims at (None: no target for that row). ``bound`` is an absolute target instead
(or as well): at most that much of the unit when lower is better, at least otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = 1


@dataclass
class Row:
    """One measured figure of ours, beside one peer's figure for the same work."""

    name: str
    unit: str
    ours: float | None
    peer: str | None = None
    peer_value: float | None = None
    higher_is_better: bool = True
    target: float | None = None  # least `score` aimed at (ours better by that factor)
    group: str = ""  # a heading the row belongs to, for the tables ("" = none)
    note: str = ""
    # An absolute target for ``ours`` in ``unit``: at most (lower is better) or at least.
    bound: float | None = None

    @property
    def ratio(self) -> float | None:
        """ours / peer, as measured (read it with ``higher_is_better``)."""
        if self.ours is None or not self.peer_value:
            return None
        return self.ours / self.peer_value

    @property
    def score(self) -> float | None:
        """The ratio turned so that above 1 means ours is better."""
        ratio = self.ratio
        if ratio is None or ratio == 0:
            return None
        return ratio if self.higher_is_better else 1 / ratio

    @property
    def met(self) -> bool | None:
        """Whether every target of the row is met; None if it has none or it is unmeasured."""
        verdicts: list[bool | None] = []
        if self.target is not None:
            score = self.score
            verdicts.append(None if score is None else score >= self.target)
        if self.bound is not None:
            ours = self.ours
            if ours is None:
                verdicts.append(None)
            else:
                verdicts.append(ours >= self.bound if self.higher_is_better else ours <= self.bound)
        if not verdicts or None in verdicts:
            return None
        return all(verdicts)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(ratio=self.ratio, score=self.score, met=self.met)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        names = cls.__dataclass_fields__
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclass
class Result:
    """A benchmark's whole output: its rows and what a reader needs to weigh them."""

    benchmark: str
    title: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "benchmark": self.benchmark,
            "title": self.title,
            "settings": self.settings,
            "notes": self.notes,
            "rows": [row.to_json() for row in self.rows],
            "load_average": load_average(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        return cls(
            benchmark=str(data["benchmark"]),
            title=str(data.get("title", data["benchmark"])),
            rows=[Row.from_json(row) for row in data.get("rows", [])],
            notes=[str(note) for note in data.get("notes", [])],
            settings=dict(data.get("settings", {})),
        )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", metavar="FILE", help="also write the result rows to FILE (for run_all.py)"
    )


def write_json(
    path: str | None,
    benchmark: str,
    title: str,
    rows: Sequence[Row],
    *,
    notes: Sequence[str] = (),
    settings: dict[str, Any] | None = None,
) -> None:
    """Write the rows to ``path`` (nothing when ``path`` is None)."""
    if path is None:
        return
    result = Result(benchmark, title, list(rows), list(notes), dict(settings or {}))
    Path(path).write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike[str]) -> Result:
    return Result.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


# --- the machine ----------------------------------------------------------------------


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def os_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    return {
        "CPU": f"{cpu_model()} x {os.cpu_count()}",
        "memory": memory_total(),
        "OS": f"{os_name()} (kernel {platform.release()}, {platform.machine()})",
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load average at start": load_average(),
    }


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB (VmRSS in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")
