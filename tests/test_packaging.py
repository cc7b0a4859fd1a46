"""The distribution: ``python -m build`` makes a wheel and an sdist; the wheel, installed
into a fresh virtual environment, gives a working ``mailproto`` command.

The fresh environment gets the wheel without its dependencies, which it borrows from the
test's own environment through a ``.pth`` file: the test stays offline and fast, and
still proves that the wheel holds every module, data file and the console script.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_and_sdist_install_and_run(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = dist.glob("mailproto-*.whl")
    (sdist,) = dist.glob("mailproto-*.tar.gz")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mailproto/py.typed" in names
    assert "mailproto_adapters/py.typed" in names
    assert "mailproto_adapters/cli.py" in names
    assert not any(n.startswith("tests/") for n in names)
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert any(m.endswith("/pyproject.toml") for m in members)
    assert any(m.endswith("/src/mailproto/__init__.py") for m in members)

    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
         "--target", site, str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    where = subprocess.run(
        [str(python), "-c", "import mailproto_adapters; print(mailproto_adapters.__file__)"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert where.startswith(site)
    script = Path(site) / "bin" / "mailproto"
    assert script.exists()
    helped = subprocess.run(
        [str(python), str(script), "--help"], check=True, capture_output=True, text=True
    )
    assert "serve" in helped.stdout
    checked = subprocess.run(
        [str(python), "-m", "mailproto_adapters", "check-config"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "smtp" in checked.stdout
