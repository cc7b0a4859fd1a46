"""The ``mailproto`` command dispatches to its components."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from mailproto_adapters.cli import main


def test_help_and_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "user add|passwd|del|list" in capsys.readouterr().out
    assert main([]) == 64
    assert main(["frobnicate"]) == 64
    assert "unknown command" in capsys.readouterr().err


def test_user_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users = tmp_path / "users.toml"
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret password\n"))
    assert main(["user", "--users", str(users), "add", "alice", "--password-stdin"]) == 0
    result = subprocess.run(
        [sys.executable, "-m", "mailproto_adapters", "user", "--users", str(users), "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["alice"]
