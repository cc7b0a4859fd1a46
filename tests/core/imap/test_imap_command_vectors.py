"""Known-answer vectors: RFC example command lines parse and re-serialise identically.

The vectors live in tests/vectors/imap-commands-*.txt (format described in
imap-commands-rfc9051.txt).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailproto.imap._command_codec import format_command, parse_command
from mailproto.imap._grammar import dump

VECTORS = Path(__file__).parent.parent.parent / "vectors"


def _load() -> list[tuple[str, bytes, bytes]]:
    cases: list[tuple[str, bytes, bytes]] = []
    for path in sorted(VECTORS.glob("imap-commands-*.txt")):
        for number, text in enumerate(path.read_text("utf-8").splitlines(), 1):
            raw = text.encode("utf-8").replace(b"\\r\\n", b"\r\n")
            if text.startswith("C: "):
                cases.append((f"{path.name}:{number}", raw[3:] + b"\r\n", raw[3:] + b"\r\n"))
            elif text.startswith("=> "):
                name, line, _ = cases[-1]
                cases[-1] = (name, line, raw[3:] + b"\r\n")
            else:
                assert not text or text.startswith("#"), f"{path.name}:{number}: {text!r}"
    return cases


CASES = _load()


def test_vectors_were_found() -> None:
    assert len(CASES) > 150


@pytest.mark.parametrize(("line", "canonical"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_vector(line: bytes, canonical: bytes) -> None:
    cmd = parse_command(line)
    # Written back as it was spelled, or in the canonical spelling on request.
    # {n+} is written only where LITERAL+ is in use, as it was for such lines
    assert dump(format_command(cmd, literal_plus=b"+}\r\n" in line)) == line
    assert dump(format_command(cmd, as_parsed=False)) == canonical
    assert parse_command(canonical) == cmd
    assert dump(format_command(parse_command(canonical))) == canonical
    assert cmd.tag == line.split(b" ", 1)[0].decode()
