"""The MDA's users file: password hashes and SCRAM keys, never a password.

One TOML file (format in docs/mda-users.md) that `UserDB` writes itself, a whole new
copy each time (temporary file, fsync, ``os.replace``, fsync of the directory), so a
reader or a crash only ever sees the old file or the new one. Writers in several
processes take an exclusive ``flock`` on ``<file>.lock`` and re-read the file under it,
so concurrent ``add`` calls never lose each other's users. Readers take no lock; they
re-read the file when its inode, size or mtime changed, so a ``mailproto user add`` is
seen by running servers without a restart.

Per user: a scrypt hash for PLAIN/LOGIN/USER-PASS, SCRAM-SHA-256 keys (derived once,
when the password is set), optionally the APOP secret (which is the password itself: only
for users who opted in), an optional quota in octets and an enabled flag. CRAM-MD5 also
needs the cleartext and is therefore not offered at all.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import contextlib
import errno
import fcntl
import hashlib
import hmac
import logging
import os
import secrets
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from mailproto.sasl import ScramCredentials, scram_credentials

__all__ = [
    "DEFAULT_USERS_FILE",
    "PasswordCheck",
    "ScryptParams",
    "UnknownUserError",
    "User",
    "UserDB",
    "UserExistsError",
    "UsersFileError",
    "hash_password",
    "validate_name",
    "validate_password",
    "verify_password_hash",
]

log = logging.getLogger("mailproto.users")

DEFAULT_USERS_FILE = Path("mailproto-data") / "users.toml"
FORMAT_VERSION = 1
MAX_NAME_LENGTH = 254  # the longest address SMTP can carry (RFC 5321 path limit - 2)
MAX_PASSWORD_LENGTH = 1024
MIN_SCRAM_ITERATIONS = 4096
# Bounds on hash parameters read from the file: a hand-edited or hostile file must not
# make every login burn gigabytes or minutes.
_MAX_SCRYPT_N = 2**20
_MAX_SCRYPT_R = 32
_MAX_SCRYPT_P = 16
_MAX_SCRAM_ITERATIONS = 1_000_000
_SCRYPT_DKLEN = 32

PasswordCheck = Literal["ok", "bad", "unknown", "disabled"]
"""What `UserDB.check_password` found; only "ok" lets the user in. The others are for
the server's log, never for the client."""


class UsersFileError(ValueError):
    """The users file cannot be parsed or holds an invalid entry."""


class UserExistsError(ValueError):
    """`UserDB.add` for a name that is already taken."""


class UnknownUserError(KeyError):
    """A change to a user that does not exist."""

    def __str__(self) -> str:
        return f"unknown user {self.args[0]!r}"


# --- names and passwords ---------------------------------------------------------------


def validate_name(name: str) -> str:
    """Return the canonical (lowercase) form of a user name, or raise ValueError.

    A name is a local part (``alice``) or a full address (``alice@example.org``). It ends
    up in log lines, TOML keys and (for the store) directory names, hence no control
    characters, no whitespace, no ``/``, ``\\`` or ``:``, no leading dot, at most one
    ``@``. Lowercase so that ``Alice`` and ``alice`` cannot be two users.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("user name must be a non-empty string")
    canonical = name.lower()
    if len(canonical) > MAX_NAME_LENGTH:
        raise ValueError(f"user name longer than {MAX_NAME_LENGTH} characters")
    for ch in canonical:
        if ch.isspace() or not ch.isprintable() or ch in "/\\:\"'":
            raise ValueError(f"user name contains a forbidden character {ch!r}")
    if canonical.startswith("."):
        raise ValueError("user name must not start with '.'")
    local, at, domain = canonical.partition("@")
    if at and (not local or not domain or "@" in domain):
        raise ValueError("user name must be a local part or a single address local@domain")
    return canonical


def validate_password(password: str) -> None:
    """Refuse what no mechanism can carry: empty, NUL, or absurdly long passwords."""
    if not isinstance(password, str) or not password:
        raise ValueError("password must be a non-empty string")
    if "\x00" in password or "\n" in password or "\r" in password:
        raise ValueError("password must not contain NUL or line breaks")
    if len(password.encode("utf-8")) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password longer than {MAX_PASSWORD_LENGTH} octets")


# --- scrypt hashes ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ScryptParams:
    """scrypt cost parameters. The default (N=2**14, r=8, p=1) costs about 16 MiB and
    some tens of milliseconds per check; tests may pass cheaper ones."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    def __attrs_post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1) or self.n > _MAX_SCRYPT_N:
            raise ValueError("scrypt N must be a power of two, 2 <= N <= 2**20")
        if not 1 <= self.r <= _MAX_SCRYPT_R or not 1 <= self.p <= _MAX_SCRYPT_P:
            raise ValueError("scrypt r or p out of range")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise UsersFileError(f"{what} is not valid base64") from None


def _scrypt(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=128 * params.n * params.r * params.p + 2**20,
        dklen=_SCRYPT_DKLEN,
    )


def hash_password(
    password: str, params: ScryptParams | None = None, *, salt: bytes | None = None
) -> str:
    """``scrypt$N$r$p$<salt b64>$<hash b64>``: the parameters travel with the hash, so
    raising the cost later does not invalidate existing users."""
    params = params or ScryptParams()
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = _scrypt(password, salt, params)
    return f"scrypt${params.n}${params.r}${params.p}${_b64(salt)}${_b64(digest)}"


def _parse_hash(encoded: str) -> tuple[ScryptParams, bytes, bytes]:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise UsersFileError("password hash is not scrypt$N$r$p$salt$hash")
    try:
        params = ScryptParams(n=int(parts[1]), r=int(parts[2]), p=int(parts[3]))
    except ValueError as exc:
        raise UsersFileError(f"bad scrypt parameters: {exc}") from None
    salt = _unb64(parts[4], "scrypt salt")
    digest = _unb64(parts[5], "scrypt hash")
    if not salt or len(digest) != _SCRYPT_DKLEN:
        raise UsersFileError("scrypt salt empty or hash of the wrong length")
    return params, salt, digest


def verify_password_hash(password: str, encoded: str) -> bool:
    """Check ``password`` against a `hash_password` string in constant time."""
    params, salt, digest = _parse_hash(encoded)
    return hmac.compare_digest(_scrypt(password, salt, params), digest)


# --- records -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class User:
    """One user as stored. Secrets stay out of ``repr()`` so a logged record leaks none."""

    name: str
    password_hash: str = attrs.field(repr=False)
    scram: ScramCredentials = attrs.field(repr=False)
    apop_secret: str | None = attrs.field(default=None, repr=False)
    quota: int | None = None
    enabled: bool = True

    @property
    def apop(self) -> bool:
        """Whether the user opted into APOP (and so has its secret stored)."""
        return self.apop_secret is not None


def _toml_string(value: str) -> str:
    """A TOML basic string; escapes everything TOML forbids raw (controls, DEL)."""
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _dump(users: dict[str, User]) -> str:
    lines = [
        "# mailproto users file, written by `mailproto user`; see docs/mda-users.md.",
        "# Edit with care: the whole file is rewritten on every change.",
        f"version = {FORMAT_VERSION}",
    ]
    for name in sorted(users):
        user = users[name]
        lines += [
            "",
            f"[users.{_toml_string(name)}]",
            f"password = {_toml_string(user.password_hash)}",
            f"scram_salt = {_toml_string(_b64(user.scram.salt))}",
            f"scram_iterations = {user.scram.iterations}",
            f"scram_stored_key = {_toml_string(_b64(user.scram.stored_key))}",
            f"scram_server_key = {_toml_string(_b64(user.scram.server_key))}",
        ]
        if user.apop_secret is not None:
            lines.append(f"apop_secret = {_toml_string(user.apop_secret)}")
        if user.quota is not None:
            lines.append(f"quota = {user.quota}")
        lines.append(f"enabled = {'true' if user.enabled else 'false'}")
    return "\n".join(lines) + "\n"


def _get(table: dict[str, Any], key: str, kind: type, name: str, default: Any = None) -> Any:
    if key not in table:
        return default
    value = table[key]
    # bool is an int subclass: keep true/false out of integer fields.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UsersFileError(f"user {name!r}: {key} must be a {kind.__name__}")
    return value


def _required(table: dict[str, Any], key: str, kind: type, name: str) -> Any:
    if key not in table:
        raise UsersFileError(f"user {name!r}: missing {key}")
    return _get(table, key, kind, name)


def _parse(text: str) -> dict[str, User]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsersFileError(f"not valid TOML: {exc}") from None
    version = doc.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise UsersFileError(f"unsupported users file version {version!r}")
    table = doc.get("users", {})
    if not isinstance(table, dict):
        raise UsersFileError("users must be a table")
    users: dict[str, User] = {}
    for raw_name, entry in table.items():
        try:
            name = validate_name(raw_name)
        except ValueError as exc:
            raise UsersFileError(f"bad user name {raw_name!r}: {exc}") from None
        if name != raw_name or name in users:
            raise UsersFileError(f"user name {raw_name!r} is not canonical or is repeated")
        if not isinstance(entry, dict):
            raise UsersFileError(f"user {name!r} must be a table")
        password_hash = _required(entry, "password", str, name)
        _parse_hash(password_hash)
        iterations = _required(entry, "scram_iterations", int, name)
        if not MIN_SCRAM_ITERATIONS <= iterations <= _MAX_SCRAM_ITERATIONS:
            raise UsersFileError(f"user {name!r}: scram_iterations out of range")
        try:
            scram = ScramCredentials(
                salt=_unb64(_required(entry, "scram_salt", str, name), "scram_salt"),
                iterations=iterations,
                stored_key=_unb64(
                    _required(entry, "scram_stored_key", str, name), "scram_stored_key"
                ),
                server_key=_unb64(
                    _required(entry, "scram_server_key", str, name), "scram_server_key"
                ),
            )
        except ValueError as exc:
            raise UsersFileError(f"user {name!r}: bad SCRAM keys: {exc}") from None
        quota = _get(entry, "quota", int, name)
        if quota is not None and quota < 0:
            raise UsersFileError(f"user {name!r}: quota must not be negative")
        users[name] = User(
            name=name,
            password_hash=password_hash,
            scram=scram,
            apop_secret=_get(entry, "apop_secret", str, name),
            quota=quota,
            enabled=_get(entry, "enabled", bool, name, True),
        )
    return users


# --- the database ------------------------------------------------------------------------

_Stamp = tuple[int, int, int, int]  # device, inode, size, mtime_ns


class UserDB:
    """The users file, loaded in memory and kept in step with the disk.

    Safe to share between threads; several processes may read and write the same file.
    Reads return the state of the file as last seen (re-read when it changed on disk);
    every change is made under the lock file on a fresh read, then written atomically.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        scrypt: ScryptParams | None = None,
        scram_iterations: int = MIN_SCRAM_ITERATIONS,
    ) -> None:
        """
        Args:
            path: the users file; it need not exist yet (an empty database), its
                directory is created on the first write.
            scrypt: cost for new password hashes (existing hashes keep theirs).
            scram_iterations: PBKDF2 rounds for new SCRAM keys; RFC 7677 asks >= 4096.

        Raises:
            UsersFileError: the file exists but is not a valid users file.
            OSError: it cannot be read.
        """
        if not MIN_SCRAM_ITERATIONS <= scram_iterations <= _MAX_SCRAM_ITERATIONS:
            raise ValueError("scram_iterations must be between 4096 and 1000000")
        self.path = Path(path)
        self.scrypt = scrypt or ScryptParams()
        self.scram_iterations = scram_iterations
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._mutex = threading.RLock()
        self._users: dict[str, User] = {}
        self._stamp: _Stamp | None = None
        self._dummy_hash: str | None = None
        self.load()

    # -- reading ----------------------------------------------------------------------

    def _stat(self) -> _Stamp | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def load(self) -> None:
        """Read the file now, whatever its stamp says. A missing file is no users."""
        with self._mutex:
            stamp = self._stat()
            if stamp is None:
                self._users, self._stamp = {}, None
                return
            text = self.path.read_text(encoding="utf-8")
            # Stat again after the read: a replace in between is caught by the next check.
            self._users = _parse(text)
            self._stamp = stamp

    def _refresh(self) -> None:
        """Re-read the file if it changed on disk. A broken file keeps the last good
        copy in service (a server must not lose every user to a typo) and is logged."""
        if self._stat() == self._stamp:
            return
        try:
            self.load()
        except (UsersFileError, OSError, UnicodeDecodeError) as exc:
            log.error("users file %s not reloaded, keeping the last good copy: %s", self.path, exc)

    def get(self, name: str) -> User | None:
        """The user called ``name`` (any case), or None."""
        return self.find(name)

    def find(self, *names: str) -> User | None:
        """The first of ``names`` that is a user, or None: `get` for each, with one
        look at the file's stamp for them all (an address, then its local part)."""
        canonical = []
        for name in names:
            try:
                canonical.append(validate_name(name))
            except ValueError:
                continue
        with self._mutex:
            self._refresh()
            for name in canonical:
                user = self._users.get(name)
                if user is not None:
                    return user
        return None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def list(self) -> builtins.list[User]:
        """All users, sorted by name."""
        with self._mutex:
            self._refresh()
            return [self._users[name] for name in sorted(self._users)]

    def has_apop_users(self) -> bool:
        """Whether any user opted into APOP (a POP3 server may skip the timestamp else)."""
        return any(user.apop for user in self.list())

    # -- authentication ---------------------------------------------------------------

    def _dummy(self) -> str:
        # Computed once, with the current parameters, so an unknown user costs the same
        # scrypt as a real one.
        if self._dummy_hash is None:
            self._dummy_hash = hash_password(secrets.token_urlsafe(16), self.scrypt)
        return self._dummy_hash

    def check_password(self, name: str, password: str) -> PasswordCheck:
        """Check a login, spending one scrypt whatever the outcome (unknown users are
        checked against a dummy hash) so that timing does not reveal which users exist."""
        user = self.get(name)
        encoded = user.password_hash if user is not None else self._dummy()
        try:
            ok = verify_password_hash(password, encoded)
        except UsersFileError:  # pragma: no cover - hashes are validated when loaded
            ok = False
        if user is None:
            return "unknown"
        if not ok:
            return "bad"
        return "ok" if user.enabled else "disabled"

    def verify_password(self, name: str, password: str) -> bool:
        """True only for an enabled user with this password."""
        return self.check_password(name, password) == "ok"

    def scram_credentials(self, name: str) -> ScramCredentials | None:
        """The SCRAM-SHA-256 keys of an enabled user, None otherwise (the mechanism then
        carries on with made-up keys and fails at the proof)."""
        user = self.get(name)
        if user is None or not user.enabled:
            return None
        return user.scram

    def apop_secret(self, name: str) -> str | None:
        """The APOP secret of an enabled user who opted in, else None."""
        user = self.get(name)
        if user is None or not user.enabled:
            return None
        return user.apop_secret

    # -- changes ------------------------------------------------------------------------

    def _make(
        self, name: str, password: str, *, apop: bool, quota: int | None, enabled: bool
    ) -> User:
        validate_password(password)
        if quota is not None and (isinstance(quota, bool) or quota < 0):
            raise ValueError("quota must be a non-negative number of octets")
        return User(
            name=name,
            password_hash=hash_password(password, self.scrypt),
            scram=scram_credentials(password, iterations=self.scram_iterations),
            apop_secret=password if apop else None,
            quota=quota,
            enabled=enabled,
        )

    def add(
        self, name: str, password: str, *, apop: bool = False, quota: int | None = None
    ) -> User:
        """Create a user. ``apop=True`` stores the password itself (APOP needs it).

        Raises:
            ValueError: bad name, password or quota.
            UserExistsError: the name is taken.
        """
        canonical = validate_name(name)
        user = self._make(canonical, password, apop=apop, quota=quota, enabled=True)
        with self._transaction() as users:
            if canonical in users:
                raise UserExistsError(f"user {canonical!r} already exists")
            users[canonical] = user
        return user

    def set_password(self, name: str, password: str, *, apop: bool | None = None) -> User:
        """Change a password (and the SCRAM keys and APOP secret with it). ``apop`` None
        keeps the user's choice, True/False opts in or out."""
        canonical = validate_name(name)
        with self._transaction() as users:
            old = users.get(canonical)
            if old is None:
                raise UnknownUserError(canonical)
            keep_apop = old.apop if apop is None else apop
            user = self._make(
                canonical, password, apop=keep_apop, quota=old.quota, enabled=old.enabled
            )
            users[canonical] = user
        return user

    def update(
        self,
        name: str,
        *,
        quota: int | Literal["keep"] | None = "keep",
        enabled: bool | None = None,
    ) -> User:
        """Change a user's quota (None = unlimited) or enabled flag."""
        canonical = validate_name(name)
        with self._transaction() as users:
            old = users.get(canonical)
            if old is None:
                raise UnknownUserError(canonical)
            new = old
            if quota != "keep":
                if quota is not None and (isinstance(quota, bool) or quota < 0):
                    raise ValueError("quota must be a non-negative number of octets")
                new = attrs.evolve(new, quota=quota)
            if enabled is not None:
                new = attrs.evolve(new, enabled=enabled)
            users[canonical] = new
        return new

    def delete(self, name: str) -> None:
        """Remove a user (their mail is the store's business)."""
        canonical = validate_name(name)
        with self._transaction() as users:
            if canonical not in users:
                raise UnknownUserError(canonical)
            del users[canonical]

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[dict[str, User]]:
        """Lock, re-read, let the caller change a copy, write it. An exception from the
        caller leaves the file untouched."""
        with self._mutex:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                self.load()
                users = dict(self._users)
                yield users
                self._write(_dump(users))
                self._users = users
                self._stamp = self._stat()
            finally:
                os.close(lock_fd)  # closing releases the flock

    def _write(self, text: str) -> None:
        directory = self.path.parent
        tmp = directory / f".{self.path.name}.tmp.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                data = memoryview(text.encode("utf-8"))
                while data:
                    written = os.write(fd, data)
                    data = data[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; some file systems refuse fsync on a directory."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:  # pragma: no cover - depends on the file system
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
