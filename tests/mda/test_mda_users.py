"""The users file: hashing, format round trip, atomic writes, concurrent writers, CLI."""

from __future__ import annotations

import io
import multiprocessing
import os
import stat
import tomllib
from pathlib import Path

import pytest

from mailproto.sasl import scram_credentials
from mailproto_adapters.mda.users import (
    ScryptParams,
    UnknownUserError,
    UserDB,
    UserExistsError,
    UsersFileError,
    hash_password,
    validate_name,
    verify_password_hash,
)
from mailproto_adapters.mda.users_cli import main

FAST = ScryptParams(n=2**4, r=1, p=1)  # cheap hashes keep the tests fast


def make_db(path: Path) -> UserDB:
    return UserDB(path, scrypt=FAST)


# --- hashing --------------------------------------------------------------------------


def test_hash_format_and_verify() -> None:
    encoded = hash_password("s3cret", FAST, salt=b"0123456789abcdef")
    parts = encoded.split("$")
    assert parts[:4] == ["scrypt", "16", "1", "1"]
    assert verify_password_hash("s3cret", encoded)
    assert not verify_password_hash("s3cret ", encoded)
    assert not verify_password_hash("", encoded)


def test_default_scrypt_parameters() -> None:
    encoded = hash_password("pw")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_password_hash("pw", encoded)


def test_hashes_are_salted() -> None:
    assert hash_password("pw", FAST) != hash_password("pw", FAST)


@pytest.mark.parametrize(
    "bad",
    ["md5$x", "scrypt$3$8$1$AAAA$AAAA", "scrypt$16$8$1$!!$AAAA", "scrypt$16$8$1$AAAA$AAAA"],
)
def test_bad_hashes_are_refused(bad: str) -> None:
    with pytest.raises(UsersFileError):
        verify_password_hash("pw", bad)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("alice", "alice"), ("Alice", "alice"), ("bob@Example.ORG", "bob@example.org")],
)
def test_valid_names(name: str, canonical: str) -> None:
    assert validate_name(name) == canonical


@pytest.mark.parametrize(
    "name",
    ["", "a/b", "a:b", "a\x00b", "a\nb", "a b", "..", ".hidden", "a@b@c", "@x", "x@", "a\\b",
     "x" * 255, "tab\there", "del\x7f"],
)  # fmt: skip
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValueError):
        validate_name(name)


# --- the database -----------------------------------------------------------------------


def test_add_get_verify(tmp_path: Path) -> None:
    db = make_db(tmp_path / "users.toml")
    user = db.add("Alice", "correct horse", quota=1000)
    assert user.name == "alice"
    assert db.get("ALICE") == user
    # find: the first name that is a user (invalid names skipped), as LMTP resolves
    # an address and then its local part
    assert db.find("alice@example.org", "Alice") == user
    assert db.find("bad/name", "ALICE") == user
    assert db.find("nobody", "bad/name") is None
    assert db.find() is None
    assert db.verify_password("alice", "correct horse")
    assert db.verify_password("Alice", "correct horse")
    assert not db.verify_password("alice", "wrong")
    assert not db.verify_password("nobody", "correct horse")
    assert not db.verify_password("bad/name", "x")
    assert db.check_password("nobody", "x") == "unknown"
    assert db.check_password("alice", "x") == "bad"
    assert db.apop_secret("alice") is None
    assert "secret" not in repr(user)
    assert "scrypt" not in repr(user)
    with pytest.raises(UserExistsError):
        db.add("alice", "other")


def test_scram_credentials_match_the_password(tmp_path: Path) -> None:
    db = make_db(tmp_path / "users.toml")
    db.add("alice", "pencil")
    creds = db.scram_credentials("alice")
    assert creds is not None
    assert creds.iterations >= 4096
    assert creds == scram_credentials("pencil", salt=creds.salt, iterations=creds.iterations)
    assert db.scram_credentials("nobody") is None


def test_apop_secret_only_when_opted_in(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    db = make_db(path)
    db.add("alice", "pw-a", apop=True)
    db.add("bob", "pw-b")
    assert db.apop_secret("alice") == "pw-a"
    assert db.apop_secret("bob") is None
    assert db.has_apop_users()
    text = path.read_text()
    assert "pw-a" in text
    assert "pw-b" not in text
    db.set_password("alice", "pw-a2")  # keeps the opt-in
    assert db.apop_secret("alice") == "pw-a2"
    db.set_password("alice", "pw-a3", apop=False)
    assert db.apop_secret("alice") is None
    assert "pw-a" not in path.read_text()


def test_set_password_delete_update(tmp_path: Path) -> None:
    db = make_db(tmp_path / "users.toml")
    db.add("alice", "one")
    db.set_password("alice", "two")
    assert not db.verify_password("alice", "one")
    assert db.verify_password("alice", "two")
    db.update("alice", quota=5, enabled=False)
    assert db.get("alice") is not None
    assert db.check_password("alice", "two") == "disabled"
    assert not db.verify_password("alice", "two")
    assert db.scram_credentials("alice") is None
    db.update("alice", enabled=True, quota=None)
    assert db.verify_password("alice", "two")
    db.delete("alice")
    assert db.get("alice") is None
    assert db.list() == []
    with pytest.raises(UnknownUserError):
        db.delete("alice")
    with pytest.raises(UnknownUserError):
        db.set_password("alice", "x")


@pytest.mark.parametrize("password", ["", "a\x00b", "line\nbreak", "x" * 1025])
def test_bad_passwords_refused(tmp_path: Path, password: str) -> None:
    db = make_db(tmp_path / "users.toml")
    with pytest.raises(ValueError):
        db.add("alice", password)
    assert not (tmp_path / "users.toml").exists()


def test_round_trip_through_tomllib(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "users.toml"
    db = make_db(path)
    tricky = 'q"uo\\te\ttab\x7f é'
    db.add("alice@example.org", tricky, apop=True, quota=123)
    db.add("bob", "pw")
    db.update("bob", enabled=False)
    doc = tomllib.loads(path.read_text())
    assert doc["version"] == 1
    entry = doc["users"]["alice@example.org"]
    assert entry["apop_secret"] == tricky
    assert entry["quota"] == 123
    assert entry["enabled"] is True
    assert entry["password"].startswith("scrypt$16$1$1$")
    assert doc["users"]["bob"]["enabled"] is False
    again = UserDB(path)
    assert again.list() == db.list()
    assert again.verify_password("alice@example.org", tricky)


def test_file_mode_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    make_db(path).add("alice", "pw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert make_db(tmp_path / "none.toml").list() == []


@pytest.mark.parametrize(
    "text",
    [
        "users = [",
        "version = 2",
        'users = "x"',
        '[users."Alice"]\npassword = "x"',
        '[users.alice]\npassword = "scrypt$16$1$1$AAAA$AAAA"',
        '[users.alice]\nenabled = "yes"',
    ],
)
def test_broken_files_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "users.toml"
    path.write_text(text)
    with pytest.raises(UsersFileError):
        UserDB(path)


def test_reload_when_changed_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    server = make_db(path)
    admin = make_db(path)
    admin.add("alice", "pw")
    assert server.verify_password("alice", "pw")
    admin.delete("alice")
    assert server.get("alice") is None


def test_broken_edit_keeps_last_good_copy(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "users.toml"
    server = make_db(path)
    server.add("alice", "pw")
    path.write_text("this is = = not toml")
    assert server.verify_password("alice", "pw")
    assert "not reloaded" in caplog.text
    with pytest.raises(UsersFileError):  # but a change must not overwrite the edit
        server.add("bob", "pw")


def test_crash_mid_write_leaves_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "users.toml"
    db = make_db(path)
    db.add("alice", "pw")
    before = path.read_bytes()
    real_write = os.write

    def half_write(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_write)
    with pytest.raises(OSError):
        db.add("bob", "pw")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.toml", "users.toml.lock"]
    fresh = make_db(path)
    assert [u.name for u in fresh.list()] == ["alice"]
    assert db.get("bob") is None


def test_crash_before_rename_leaves_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "users.toml"
    db = make_db(path)
    db.add("alice", "pw")
    before = path.read_bytes()

    def boom(*args: object) -> None:
        raise KeyboardInterrupt  # as abrupt as it gets inside the process

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        db.add("bob", "pw")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert make_db(path).get("bob") is None


def _add_many(path: str, prefix: str, count: int) -> None:
    db = UserDB(path, scrypt=FAST)
    for i in range(count):
        db.add(f"{prefix}{i}", "pw")


def test_concurrent_adds_from_two_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_many, args=(str(path), p, 40)) for p in ("a", "b")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    names = {u.name for u in make_db(path).list()}
    assert names == {f"{p}{i}" for p in ("a", "b") for i in range(40)}


# --- the command line -------------------------------------------------------------------


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
    stdin: str = "",
) -> tuple[int, str, str]:  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_add_list_passwd_del(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    users = str(tmp_path / "users.toml")
    status, _, err = run_cli(
        monkeypatch, capsys,
        ["user", "--users", users, "add", "Alice", "--quota", "1000", "--password-stdin"],
        "first pw\n",
    )  # fmt: skip
    assert status == 0, err
    assert "added alice" in err
    status, _, _ = run_cli(
        monkeypatch, capsys, ["add", "bob", "--apop", "--password-stdin", "--users", users], "b\n"
    )
    assert status == 0
    status, out, _ = run_cli(monkeypatch, capsys, ["list", "--users", users])
    assert status == 0
    assert out.splitlines() == ["alice quota=1000", "bob apop"]

    db = UserDB(users)
    assert db.verify_password("alice", "first pw")
    status, _, err = run_cli(
        monkeypatch, capsys, ["passwd", "alice", "--password-stdin", "--users", users], "new\r\n"
    )
    assert status == 0, err
    assert db.verify_password("alice", "new")

    status, _, err = run_cli(monkeypatch, capsys, ["del", "alice", "--users", users])
    assert status == 0
    assert db.get("alice") is None
    assert "first pw" not in (tmp_path / "users.toml").read_text()


def test_cli_prompts_twice_with_getpass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    users = str(tmp_path / "users.toml")
    prompts: list[str] = []
    answers = iter(["typed", "typed", "one", "two"])

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    status, _, _ = run_cli(monkeypatch, capsys, ["--users", users, "add", "alice"])
    assert status == 0
    assert len(prompts) == 2
    assert UserDB(users).verify_password("alice", "typed")
    status, _, err = run_cli(monkeypatch, capsys, ["--users", users, "passwd", "alice"])
    assert status == 65
    assert "do not match" in err
    assert UserDB(users).verify_password("alice", "typed")


def test_cli_never_takes_the_password_from_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    users = str(tmp_path / "users.toml")
    status, _, err = run_cli(
        monkeypatch, capsys, ["--users", users, "add", "alice", "hunter2"], "x\n"
    )
    assert status == 64
    assert "unrecognized arguments" in err
    status, _, err = run_cli(
        monkeypatch, capsys, ["--users", users, "add", "alice", "--password", "hunter2"]
    )
    assert status == 64
    assert not (tmp_path / "users.toml").exists()


@pytest.mark.parametrize(
    ("argv", "stdin", "status", "message"),
    [
        (["add", "alice", "--password-stdin"], "pw\n", 73, "already exists"),
        (["passwd", "nobody", "--password-stdin"], "pw\n", 67, "unknown user"),
        (["del", "nobody"], "", 67, "unknown user"),
        (["add", "bad/name", "--password-stdin"], "pw\n", 65, "forbidden character"),
        (["add", "carol", "--password-stdin"], "", 65, "non-empty"),
        (["add", "carol", "--quota", "-1", "--password-stdin"], "pw\n", 64, "quota"),
        (["frobnicate"], "", 64, "invalid choice"),
        ([], "", 64, "required"),
    ],
)
def test_cli_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    status: int,
    message: str,
) -> None:
    users = str(tmp_path / "users.toml")
    make_db(tmp_path / "users.toml").add("alice", "pw")
    got, out, err = run_cli(monkeypatch, capsys, ["--users", users, *argv], stdin)
    assert (got, out) == (status, "")
    assert message in err


def test_cli_broken_users_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "users.toml"
    path.write_text("not = = toml")
    status, _, err = run_cli(monkeypatch, capsys, ["--users", str(path), "list"])
    assert status == 78
    assert str(path) in err


def test_cli_help(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(monkeypatch, capsys, ["--help"])
    assert status == 0
    assert "passwd" in out
