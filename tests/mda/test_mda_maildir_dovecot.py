"""Maildir interop with Dovecot: it reads the Maildir++ we write, and we read the one it writes.

The requirement (issue 7, "Maildir interop"): Dovecot started over our data directory
reads the same messages and flags, and we read a Maildir that Dovecot wrote. A private
Dovecot (``tests/dovecot_helpers.py``) finds the user's Maildir in our store's root as we
do (``mail_location = maildir:<root>/%u``) with the layout our store writes
(docs/mda-store.md): Maildir++ (``.A.B`` folders), "/" as the IMAP hierarchy delimiter,
and the listescape plugin with "\\" as escape character, so that ".", "\\" and a leading
"~" in a name are ``\\2e``, ``\\5c``, ``\\7e`` on disk.

Each test keeps a model of what the user's mail is (per folder: the octets, the flags
without \\Recent, INTERNALDATE in whole seconds, RFC822.SIZE) and checks that three views
equal it: our store's API, Dovecot over IMAP, and our own IMAP server (the blocking
flavour) over the same directory. Messages are compared by content, never by UID: the
two programs keep independent UID lists (``dovecot-uidlist`` and our SQLite); but our
UIDs and UIDVALIDITY must survive Dovecot's renames of the files. Octets: Dovecot saves
messages with LF line ends (``mail_save_crlf = no``) and sends every bare LF as CRLF,
counted so in RFC822.SIZE; our store and server give the stored octets as they are.

Ownership: Dovecot's mail processes run as ``mail``; the tree is handed to ``mail``
before every Dovecot phase (`hand_to_mail`), and our store runs as root, which reads and
renames anything.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import imaplib
import os
import pwd
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_mda_imap import MSG, Server, make_mda

from mailproto_adapters.mda.maildir import MaildirStore, MaildirUser

if TYPE_CHECKING:
    from conftest import RequireTool
    from dovecot_helpers import Dovecot

pytestmark = pytest.mark.interop

# The layout our store writes, as Dovecot names it (docs/mda-store.md "Names").
DOVECOT_CONFIG = """
mail_plugins = $mail_plugins listescape
namespace inbox {
  inbox = yes
  separator = /
}
plugin {
  listescape_char = "\\\\"
}
"""

PASSWORD = "alice-pw"  # alice's, for Dovecot and for our server (make_mda)
UTC = datetime.UTC
CET = datetime.timezone(datetime.timedelta(hours=1))


def msg(subject: str, body: str = "text") -> bytes:
    ident = hashlib.sha1(subject.encode()).hexdigest()[:12]
    return (
        f"From: Ann <ann@example.org>\r\nTo: bob@example.net\r\nSubject: {subject}\r\n"
        f"Message-ID: <{ident}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


# --- modified UTF-7, written here so that neither side's codec checks itself ----------


def mutf7_encode(name: str) -> str:
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if "\x20" <= ch <= "\x7e":
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(wire: str) -> str:
    def shift(m: re.Match[str]) -> str:
        if not m.group(1):
            return "&"
        b64 = m.group(1).replace(",", "/")
        return base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-16-be")

    return re.sub(r"&([A-Za-z0-9+,]*)-", shift, wire)


def test_mutf7_helpers() -> None:
    for name in ["Café", "R&D", "日本語/メール", "plain", "~x", "a&é&b"]:
        assert mutf7_decode(mutf7_encode(name)) == name
    assert mutf7_encode("Café") == "Caf&AOk-"
    assert mutf7_encode("R&D") == "R&-D"


# --- the model and the three views -----------------------------------------------------

Entry = tuple[bytes, frozenset[str], int, int]  # octets, flags, INTERNALDATE (s), RFC822.SIZE
View = dict[str, list[Entry]]  # folder -> entries, sorted


def wire(data: bytes) -> bytes:
    """The octets of a stored message with every bare LF as CRLF: what Dovecot sends as
    BODY[] and counts as RFC822.SIZE (and what our store calls ``virtual_size``)."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def stored_by_dovecot(data: bytes) -> bytes:
    """A message as Dovecot saves it (``mail_save_crlf = no``, its default): LF lines."""
    return data.replace(b"\r\n", b"\n")


def entry(data: bytes, flags: set[str] | frozenset[str], date: datetime.datetime) -> Entry:
    return (data, frozenset(flags), int(date.timestamp()), len(data))


def normalized(view: View, *, crlf: bool = False) -> View:
    """Entries sorted; with ``crlf``, octets and sizes as Dovecot shows them."""
    if crlf:
        view = {n: [(wire(d), f, t, len(wire(d))) for d, f, t, _ in es] for n, es in view.items()}
    return {name: sorted(entries, key=repr) for name, entries in view.items()}


@dataclass
class Model:
    """What the user's mail should be: folder -> entries, and the \\Noselect names."""

    folders: dict[str, list[Entry]] = field(default_factory=dict)
    noselect: set[str] = field(default_factory=set)

    def view(self, *, crlf: bool = False) -> View:
        return normalized(self.folders, crlf=crlf)

    def find(self, folder: str, subject: bytes) -> int:
        (i,) = [
            i
            for i, e in enumerate(self.folders[folder])
            if re.search(rb"^Subject: " + re.escape(subject) + rb"\r?$", e[0], re.MULTILINE)
        ]
        return i

    def set_flags(self, folder: str, subject: bytes, flags: set[str]) -> None:
        i = self.find(folder, subject)
        data, _old, date, size = self.folders[folder][i]
        self.folders[folder][i] = (data, frozenset(flags), date, size)

    def remove(self, folder: str, subject: bytes) -> Entry:
        return self.folders[folder].pop(self.find(folder, subject))

    def copy(self, source: str, subject: bytes, target: str) -> None:
        self.folders[target].append(self.folders[source][self.find(source, subject)])

    def move(self, source: str, subject: bytes, target: str) -> None:
        self.folders[target].append(self.remove(source, subject))

    def rename(self, old: str, new: str) -> None:
        for name in sorted(self.folders):
            if name == old or name.startswith(old + "/"):
                self.folders[new + name[len(old) :]] = self.folders.pop(name)


def store_view(user: MaildirUser) -> tuple[View, set[str]]:
    """(folder -> entries, \\Noselect names) through our store's API."""
    view: View = {}
    noselect: set[str] = set()
    for info in user.list():
        if "\\Noselect" in info.attributes:
            noselect.add(info.name)
            continue
        box = user.mailbox(info.name)
        entries: list[Entry] = []
        for rec in box.snapshot():
            with box.open(rec.uid) as f:
                data = f.read()
            md = box.metadata(rec.uid)
            assert md.size == rec.size == len(data)
            assert md.virtual_size == len(wire(data))
            entries.append((data, rec.all_flags, int(rec.internal_date.timestamp()), rec.size))
        view[info.name] = entries
    return normalized(view), noselect


@contextlib.contextmanager
def imap_session(port: int, user: str, password: str) -> Iterator[Any]:
    """A logged-in imaplib client, logged out (or at least closed) at the end."""
    client: Any = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        client.login(user, password)
        yield client
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            with contextlib.suppress(OSError):
                client.shutdown()


def quote(name: str) -> str:
    encoded = mutf7_encode(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


_LIST = re.compile(rb'\((?P<attrs>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.*)$')


def imap_list(client: Any) -> dict[str, set[str]]:
    """name (decoded) -> attributes (lower case), from LIST "" "*"."""
    typ, data = client.list('""', "*")
    assert typ == "OK", data
    out: dict[str, set[str]] = {}
    items = list(data)
    while items:
        item = items.pop(0)
        if isinstance(item, tuple):  # the name came as a literal
            m = _LIST.match(item[0].rsplit(b" ", 1)[0] + b" x")
            assert m is not None, item
            raw = item[1]
        else:
            m = _LIST.match(item)
            assert m is not None, item
            raw = m.group("name")
            if raw.startswith(b'"'):
                raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
        name = mutf7_decode(raw.decode("ascii"))
        out[name] = {a.lower() for a in m.group("attrs").decode().split()}
    return out


_SEQ = re.compile(rb"^(\d+) ")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_DATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


def imap_folder(client: Any, name: str) -> list[Entry]:
    typ, data = client.select(quote(name), readonly=True)
    assert typ == "OK", (name, data)
    count = int(data[0])
    if count == 0:
        return []
    typ, data = client.fetch("1:*", "(FLAGS INTERNALDATE RFC822.SIZE)")
    assert typ == "OK", data
    attrs: dict[int, tuple[frozenset[str], int, int]] = {}
    for line in data:
        assert isinstance(line, bytes), line
        seq, flags, date, size = (r.search(line) for r in (_SEQ, _FLAGS, _DATE, _SIZE))
        assert seq is not None, line
        assert flags is not None, line
        assert date is not None, line
        assert size is not None, line
        names = frozenset(flags.group(1).decode().split()) - {"\\Recent"}
        when = datetime.datetime.strptime(date.group(1).decode().strip(), "%d-%b-%Y %H:%M:%S %z")
        attrs[int(seq.group(1))] = (names, int(when.timestamp()), int(size.group(1)))
    typ, data = client.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK", data
    bodies: dict[int, bytes] = {}
    for item in data:
        if isinstance(item, tuple):
            seq = _SEQ.search(item[0])
            assert seq is not None, item
            bodies[int(seq.group(1))] = item[1]
    assert sorted(attrs) == sorted(bodies) == list(range(1, count + 1))
    return [(bodies[n], *attrs[n]) for n in range(1, count + 1)]


def imap_view(port: int, user: str, password: str) -> tuple[View, set[str]]:
    """(folder -> entries, \\Noselect names) as an IMAP server shows them."""
    with imap_session(port, user, password) as client:
        listed = imap_list(client)
        noselect = {n for n, a in listed.items() if "\\noselect" in a or "\\nonexistent" in a}
        view = {n: imap_folder(client, n) for n in listed if n not in noselect}
    return normalized(view), noselect


def imap_keywords(port: int, user: str, password: str, folder: str) -> set[str]:
    """The keywords the SELECT FLAGS response defines in ``folder``."""
    with imap_session(port, user, password) as client:
        client.select(quote(folder), readonly=True)
        _typ, flags = client.response("FLAGS")
    assert flags
    assert flags[0] is not None
    return {f for f in flags[0].decode().strip("()").split() if not f.startswith("\\")}


# --- fixtures: a private directory, Dovecots and our servers, all stopped at the end --


def hand_to_mail(root: Path) -> None:
    """Give the whole tree to the ``mail`` user, as Dovecot's mail processes need."""
    mail = pwd.getpwnam("mail")
    os.chown(root, mail.pw_uid, mail.pw_gid)
    for path in root.rglob("*"):
        os.chown(path, mail.pw_uid, mail.pw_gid, follow_symlinks=False)


@pytest.fixture
def workdir(require_tool: RequireTool) -> Iterator[Path]:
    from dovecot_helpers import unavailable_reason

    reason = unavailable_reason(("imap",))
    if reason is not None:
        require_tool.unavailable(reason)
    directory = Path(tempfile.mkdtemp(prefix="mailproto-maildir-dovecot-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def dovecot(workdir: Path) -> Iterator[Callable[..., Dovecot]]:
    """``dovecot(maildir)``: a private Dovecot serving that Maildir with our layout."""
    from dovecot_helpers import instance_processes, start_dovecot

    started: list[Dovecot] = []

    def start(maildir: Path, mode: int = 0o700) -> Dovecot:
        """Serve ``maildir``, whose root directory gets ``mode`` (made if missing)."""
        run = workdir / f"run{len(started)}"
        run.mkdir()
        maildir.mkdir(mode=mode, parents=True, exist_ok=True)
        # Dovecot finds the user's Maildir in our store's root as we do: <root>/<user>.
        config = DOVECOT_CONFIG + f"mail_location = maildir:{maildir.parent.resolve()}/%u\n"
        server = start_dovecot(
            run,
            maildir,
            user=maildir.name,
            password=PASSWORD,
            extra_config=config,
            private_root=workdir,
        )
        started.append(server)
        # start_dovecot adds o+x on the way to the Maildir, the Maildir itself included;
        # Dovecot's mail processes own it and need none, and Dovecot compares a folder's
        # permissions with the root's (RENAME), so give the root its mode back.
        maildir.chmod(mode)
        return server

    yield start
    leaked: list[str] = []
    for server in started:
        server.stop()
        leaked += instance_processes(server.instance)
    assert not leaked, leaked


@pytest.fixture
def our_imap(workdir: Path) -> Iterator[Callable[[MaildirStore], int]]:
    """``our_imap(store)``: our IMAP server (blocking flavour) over ``store``; its port.
    Users: alice / alice-pw (test_mda_imap.make_mda), as in Dovecot."""
    servers: list[Server] = []

    def start(store: MaildirStore) -> int:
        mda = make_mda(workdir / f"mda{len(servers)}", store=store)
        server = Server("blocking", mda.imap_session)
        servers.append(server)
        return server.port

    yield start
    for server in servers:
        server.stop()


def check_views(
    model: Model, user: MaildirUser, dovecot: Dovecot | None, our_port: int | None
) -> None:
    """Our store, Dovecot and our IMAP server each show exactly the model."""
    expected = model.view()
    got, noselect = store_view(user)
    assert got == expected, "our store"
    assert noselect == model.noselect, "our store: \\Noselect"
    if dovecot is not None:
        hand_to_mail(dovecot.maildir)
        got, noselect = imap_view(dovecot.imap_port, dovecot.user, dovecot.password)
        assert got == model.view(crlf=True), "Dovecot"
        assert noselect == model.noselect, "Dovecot: \\Noselect"
    if our_port is not None:
        got, noselect = imap_view(our_port, "alice", PASSWORD)
        assert got == expected, "our IMAP server"
        assert noselect == model.noselect, "our IMAP server: \\Noselect"


# --- 1. Dovecot reads what we wrote; then changes on both sides -----------------------

# Folders beyond INBOX and the SPECIAL-USE ones a new user gets; "Work" is made as the
# superior of "Work/Projects"; the others test the name escapes of docs/mda-store.md.
OUR_FOLDERS = [
    "Work/Projects",
    "Reports 2026.Q1",
    "Café",
    "~notes",
    "R&D",
    "a\\b",
    "\U0001f4ec mail",
]
SPECIAL = ["Archive", "Drafts", "Junk", "Sent", "Trash"]
D1 = datetime.datetime(2026, 11, 2, 10, 0, 0, tzinfo=CET)


def straddling() -> bytes:
    """A message of bare LF and CRLF lines whose CRLF straddles the 64 KiB chunk our
    store writes in: the ``W=`` (virtual size) in its file name, which Dovecot reports
    as RFC822.SIZE, must count it once."""
    head = msg("big", "line\nother line\r\n" * 3000)
    assert len(head) < 65535
    data = head + b"z" * (65535 - len(head)) + b"\r\nafter\nthe end\r\n"
    assert data[65535:65537] == b"\r\n"
    return data


# (folder, message, flags given at delivery, flags then set with set_flags, date)
OURS: list[tuple[str, bytes, list[str], list[str], datetime.datetime | None]] = [
    ("INBOX", msg("one"), [], ["\\Seen"], D1),
    ("INBOX", MSG, ["\\Seen"], ["\\Answered", "$Forwarded"], D1 + datetime.timedelta(hours=1)),
    ("INBOX", msg("utf8", "caf\u00e9 \u2603 8bit"), [], ["\\Flagged", "project"], None),
    ("INBOX", msg("bare lf").replace(b"\r\n", b"\n"), [], ["\\Draft"], D1),
    ("INBOX", msg("unflagged"), [], [], datetime.datetime(2020, 2, 29, 23, 59, 59, tzinfo=UTC)),
    ("INBOX", msg("deleted"), ["\\Deleted"], ["\\Seen"], D1),
    ("INBOX", straddling(), [], ["\\Seen"], D1),
    ("Archive", msg("archived"), [], ["\\Seen"], D1),
    ("Archive", msg("archived 2"), ["$Forwarded"], ["project", "\\Flagged"], D1),
    ("Work", msg("work"), [], [], D1),
    ("Work/Projects", msg("plan"), [], ["project"], D1),
    ("Work/Projects", msg("draft reply"), ["\\Draft"], ["\\Answered"], D1),
    ("Reports 2026.Q1", msg("report"), [], ["\\Seen", "$Forwarded", "project"], D1),
    ("Café", msg("caf\u00e9", "x"), [], ["\\Flagged"], D1),
    ("~notes", msg("note"), [], ["\\Seen"], D1),
    ("R&D", msg("rnd"), [], ["\\Answered", "\\Deleted"], D1),
    ("a\\b", msg("backslash"), [], ["$Forwarded"], D1),
    ("\U0001f4ec mail", msg("mailbox"), [], ["\\Seen", "project"], D1),
]


def deliver_ours(user: MaildirUser) -> Model:
    model = Model()
    for name in OUR_FOLDERS:
        user.create(name)
    for name in ["INBOX", *SPECIAL, "Work", *OUR_FOLDERS]:
        model.folders[name] = []
    for folder, data, first, then, date in OURS:
        uid = user.deliver(data, folder, flags=first, internal_date=date)
        box = user.mailbox(folder)
        if then:
            box.set_flags([uid], then, "add")
        (rec,) = [r for r in box.snapshot() if r.uid == uid]
        assert rec.all_flags == frozenset(first) | frozenset(then)
        model.folders[folder].append(entry(data, rec.all_flags, rec.internal_date))
    return model


def test_dovecot_reads_our_maildir_and_both_see_each_others_changes(
    workdir: Path,
    dovecot: Callable[..., Dovecot],
    our_imap: Callable[[MaildirStore], int],
) -> None:
    store = MaildirStore(workdir / "mail")
    user = store.user("alice")
    model = deliver_ours(user)
    port = our_imap(store)
    check_views(model, user, None, port)
    uids = uid_state(user)

    server = dovecot(workdir / "mail" / "alice")
    check_views(model, user, server, None)
    # Dovecot reads our dovecot-keywords: SELECT's FLAGS defines our keywords.
    assert {"$Forwarded", "project"} <= imap_keywords(
        server.imap_port, server.user, server.password, "INBOX"
    )
    assert {"$Forwarded", "project"} == imap_keywords(
        server.imap_port, server.user, server.password, "Reports 2026.Q1"
    )

    # 3a. Dovecot changes flags, adds a keyword, expunges and appends: we see it.
    with imap_session(server.imap_port, server.user, server.password) as client:
        client.select("INBOX")
        changes = [
            ("one", "+FLAGS", "(\\Flagged later)"),
            ("utf8", "-FLAGS", "(project)"),
            ("unflagged", "FLAGS", "(\\Seen $Forwarded)"),
        ]
        for subject, how, change in changes:
            assert client.store(seq_of(client, subject), how, change)[0] == "OK"
        client.select(quote("Archive"))
        assert client.store(seq_of(client, "archived 2"), "+FLAGS", "(\\Deleted)")[0] == "OK"
        assert client.expunge()[0] == "OK"
        appended = msg("from dovecot")
        typ, _ = client.append(quote("Work/Projects"), "(\\Seen project new-kw)", D1, appended)
        assert typ == "OK"
        # Keywords have other letters in the target folder: Dovecot renames the link.
        client.select(quote("Reports 2026.Q1"))
        assert client.copy(seq_of(client, "report"), quote("Work/Projects"))[0] == "OK"
        client.select(quote("Work/Projects"))
        assert client._simple_command("MOVE", seq_of(client, "plan"), quote("Archive"))[0] == "OK"
        assert client.rename(quote("~notes"), quote("Notes/Old"))[0] == "OK"
    model.set_flags("INBOX", b"one", {"\\Seen", "\\Flagged", "later"})
    model.set_flags("INBOX", b"utf8", {"\\Flagged"})
    model.set_flags("INBOX", b"unflagged", {"\\Seen", "$Forwarded"})
    model.remove("Archive", b"archived 2")
    model.folders["Work/Projects"].append(
        entry(stored_by_dovecot(appended), {"\\Seen", "project", "new-kw"}, D1)
    )
    model.copy("Reports 2026.Q1", b"report", "Work/Projects")
    model.move("Work/Projects", b"plan", "Archive")
    model.rename("~notes", "Notes/Old")
    model.noselect.add("Notes")  # Dovecot made .Notes.Old only
    check_views(model, user, None, port)
    assert_uids_kept(uids, user)

    # 3b. We change flags and expunge: Dovecot sees it (a new session of the same
    # running Dovecot, whose indexes remember the old state).
    inbox = user.mailbox("INBOX")
    by_subject = {_subject(inbox, r.uid): r.uid for r in inbox.snapshot()}
    inbox.set_flags([by_subject[b"unflagged"]], ["\\Deleted"], "add")
    inbox.set_flags([by_subject[b"one"]], ["later"], "remove")
    inbox.set_flags([by_subject[b"bare lf"]], ["\\Seen", "later"], "add")
    expunged = inbox.expunge()
    assert sorted(expunged) == sorted([by_subject[b"unflagged"], by_subject[b"deleted"]])
    model.remove("INBOX", b"unflagged")
    model.remove("INBOX", b"deleted")
    model.set_flags("INBOX", b"one", {"\\Seen", "\\Flagged"})
    model.set_flags("INBOX", b"bare lf", {"\\Draft", "\\Seen", "later"})
    projects = user.mailbox("Work/Projects")
    (new,) = [r.uid for r in projects.snapshot() if _subject(projects, r.uid) == b"from dovecot"]
    projects.set_flags([new], ["\\Flagged"], "set")
    model.set_flags("Work/Projects", b"from dovecot", {"\\Flagged"})
    user.deliver(msg("after dovecot"), "Archive", flags=["later"], internal_date=D1)
    model.folders["Archive"].append(entry(msg("after dovecot"), {"later"}, D1))
    # A copy links the file: its keyword letters must follow the target's keywords file.
    report = uid_of(user, "Reports 2026.Q1", b"report")
    user.mailbox("Reports 2026.Q1").copy([report], user.mailbox("Café"))
    model.copy("Reports 2026.Q1", b"report", "Café")
    user.mailbox("INBOX").move([uid_of(user, "INBOX", b"utf8")], user.mailbox("Junk"))
    model.move("INBOX", b"utf8", "Junk")
    user.rename("R&D", "Research & Dev/2026")
    model.rename("R&D", "Research & Dev/2026")
    model.folders["Research & Dev"] = []  # we make superior levels (Dovecot would not)
    user.rename("Work", "Jobs")  # with its inferior Work/Projects
    model.rename("Work", "Jobs")
    check_views(model, user, server, port)
    assert folder_dirs(server.maildir) == {
        ".Archive",
        ".Caf&AOk-",
        ".Drafts",
        ".Jobs",
        ".Jobs.Projects",
        ".Junk",
        ".Notes.Old",
        ".Reports 2026\\2eQ1",
        ".Research &- Dev",
        ".Research &- Dev.2026",
        ".Sent",
        ".Trash",
        ".a\\5cb",
        ".&2D3c7A- mail",
    }


def _subject(box: Any, uid: int) -> bytes:
    with box.open(uid) as f:
        m = re.search(rb"^Subject: (.*?)\r?$", f.read(), re.MULTILINE)
    assert m is not None
    return m.group(1)


def uid_state(user: MaildirUser) -> dict[tuple[str, bytes], tuple[int, int]]:
    """(folder, subject) -> (UIDVALIDITY, our UID) for every message."""
    out = {}
    for info in user.list():
        if "\\Noselect" not in info.attributes:
            box = user.mailbox(info.name)
            for rec in box.snapshot():
                out[(info.name, _subject(box, rec.uid))] = (box.uidvalidity, rec.uid)
    return out


def assert_uids_kept(before: dict[tuple[str, bytes], tuple[int, int]], user: MaildirUser) -> None:
    """Messages that Dovecot renamed (new/ to cur/, flags) keep our UIDs and folders
    keep their UIDVALIDITY: our IMAP clients need not resynchronise."""
    after = uid_state(user)
    kept = before.keys() & after.keys()
    assert len(kept) >= len(before) // 2
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}


def uid_of(user: MaildirUser, folder: str, subject: bytes) -> int:
    """Our UID of the one message with this subject in ``folder``."""
    box = user.mailbox(folder)
    (uid,) = [r.uid for r in box.snapshot() if _subject(box, r.uid) == subject]
    return uid


def seq_of(client: Any, subject: str) -> str:
    """The sequence number of the one message with this subject in the selected folder."""
    typ, found = client.search(None, "SUBJECT", f'"{subject}"')
    assert typ == "OK", found
    assert len(found[0].split()) == 1, (subject, found)
    return str(found[0].decode())


def folder_dirs(maildir: Path) -> set[str]:
    return {d.name for d in maildir.iterdir() if d.name.startswith(".") and (d / "cur").is_dir()}


# --- 2. We read a Maildir that Dovecot wrote; then changes on both sides --------------

THEIR_FOLDERS = [
    "Archive",
    "Work/Projects",
    "Reports 2026.Q1",
    "Café",
    "~notes",
    "R&D",
    "a\\b",
    "\U0001f4ec mail",
]

# (folder, message, flags at APPEND, flags then added with STORE, INTERNALDATE)
THEIRS: list[tuple[str, bytes, str, str, datetime.datetime]] = [
    ("INBOX", msg("d one"), "", "\\Seen", D1),
    ("INBOX", MSG, "\\Seen", "\\Answered $Forwarded", D1 + datetime.timedelta(minutes=5)),
    ("INBOX", msg("d utf8", "caf\u00e9 \u2603"), "\\Flagged project", "", D1),
    ("INBOX", msg("d lf").replace(b"\r\n", b"\n"), "\\Draft", "", D1),
    ("INBOX", msg("d none"), "", "", datetime.datetime(2021, 6, 1, 12, 0, tzinfo=UTC)),
    ("INBOX", msg("d deleted"), "\\Deleted", "\\Seen", D1),
    ("Archive", msg("d archived"), "\\Seen", "", D1),
    ("Archive", msg("d archived 2"), "$Forwarded", "project \\Flagged", D1),
    ("Work/Projects", msg("d plan"), "project", "", D1),
    ("Work/Projects", msg("d draft"), "\\Draft \\Answered", "", D1),
    ("Reports 2026.Q1", msg("d report"), "\\Seen $Forwarded project", "", D1),
    ("Café", msg("d cafe"), "", "\\Flagged", D1),
    ("~notes", msg("d note"), "\\Seen", "", D1),
    ("R&D", msg("d rnd"), "\\Answered", "\\Deleted", D1),
    ("a\\b", msg("d backslash"), "$Forwarded", "", D1),
    ("\U0001f4ec mail", msg("d mailbox"), "", "\\Seen project", D1),
]


def test_we_read_a_maildir_dovecot_wrote_and_both_see_each_others_changes(
    workdir: Path,
    dovecot: Callable[..., Dovecot],
    our_imap: Callable[[MaildirStore], int],
) -> None:
    maildir = workdir / "mail" / "alice"
    server = dovecot(maildir)
    model = Model(noselect={"Work"})  # Dovecot creates .Work.Projects only
    model.folders["INBOX"] = []
    with imap_session(server.imap_port, server.user, server.password) as client:
        for name in THEIR_FOLDERS:
            assert client.create(quote(name))[0] == "OK", name
            model.folders[name] = []
        for folder, data, first, then, date in THEIRS:
            typ, _ = client.append(quote(folder), f"({first})" if first else None, date, data)
            assert typ == "OK", folder
            if then:
                client.select(quote(folder))
                _typ, found = client.search(None, "ALL")
                last = found[0].split()[-1].decode()
                assert client.store(last, "+FLAGS", f"({then})")[0] == "OK"
            flags = set(first.split()) | set(then.split())
            model.folders[folder].append(entry(stored_by_dovecot(data), flags, date))

    # The layout of docs/mda-store.md, as Dovecot wrote it.
    assert folder_dirs(maildir) == {
        ".Archive",
        ".Work.Projects",
        ".Reports 2026\\2eQ1",
        ".Caf&AOk-",
        ".\\7enotes",
        ".R&-D",
        ".a\\5cb",
        ".&2D3c7A- mail",
    }
    store = MaildirStore(workdir / "mail")
    user = store.user("alice")
    port = our_imap(store)
    check_views(model, user, server, port)
    uids = uid_state(user)
    # The keywords are Dovecot's dovecot-keywords entries, seen through our IMAP server.
    assert {"$Forwarded", "project"} <= imap_keywords(port, "alice", PASSWORD, "INBOX")

    # 3a. Dovecot changes flags and expunges: we see it.
    with imap_session(server.imap_port, server.user, server.password) as client:
        client.select("INBOX")
        for subject, how, change in [
            ("d one", "+FLAGS", "(\\Flagged later)"),
            ("d utf8", "-FLAGS", "(project \\Flagged)"),
            ("d none", "FLAGS", "(\\Seen $Forwarded)"),
        ]:
            assert client.store(seq_of(client, subject), how, change)[0] == "OK"
        client.select(quote("Archive"))
        assert client.store(seq_of(client, "d archived 2"), "+FLAGS", "(\\Deleted)")[0] == "OK"
        assert client.expunge()[0] == "OK"
        client.select(quote("Reports 2026.Q1"))
        assert client._simple_command("MOVE", seq_of(client, "d report"), "INBOX")[0] == "OK"
        client.select(quote("Work/Projects"))
        assert client.copy(seq_of(client, "d plan"), quote("Archive"))[0] == "OK"
        client.close()
        assert client.delete(quote("Café"))[0] == "OK"
        assert client.rename(quote("~notes"), quote("Notes/~old"))[0] == "OK"
    model.move("Reports 2026.Q1", b"d report", "INBOX")
    model.copy("Work/Projects", b"d plan", "Archive")
    del model.folders["Café"]
    model.rename("~notes", "Notes/~old")
    model.noselect.add("Notes")
    model.set_flags("INBOX", b"d one", {"\\Seen", "\\Flagged", "later"})
    model.set_flags("INBOX", b"d utf8", set())
    model.set_flags("INBOX", b"d none", {"\\Seen", "$Forwarded"})
    model.remove("Archive", b"d archived 2")
    check_views(model, user, None, port)
    assert_uids_kept(uids, user)

    # 3b. We change flags and expunge: Dovecot sees it.
    inbox = user.mailbox("INBOX")
    by_subject = {_subject(inbox, r.uid): r.uid for r in inbox.snapshot()}
    inbox.set_flags([by_subject[b"d none"]], ["\\Deleted"], "add")
    inbox.set_flags([by_subject[b"d lf"]], ["\\Seen", "mine"], "add")
    inbox.set_flags([by_subject[b"d one"]], ["later", "\\Seen"], "remove")
    assert sorted(inbox.expunge()) == sorted([by_subject[b"d none"], by_subject[b"d deleted"]])
    model.remove("INBOX", b"d none")
    model.remove("INBOX", b"d deleted")
    model.set_flags("INBOX", b"d lf", {"\\Draft", "\\Seen", "mine"})
    model.set_flags("INBOX", b"d one", {"\\Flagged"})
    rnd = user.mailbox("R&D")
    assert len(rnd.expunge()) == 1
    model.remove("R&D", b"d rnd")
    user.deliver(msg("ours in theirs"), "Work/Projects", flags=["project", "\\Seen"])
    projects = user.mailbox("Work/Projects")
    (rec,) = [r for r in projects.snapshot() if _subject(projects, r.uid) == b"ours in theirs"]
    model.folders["Work/Projects"].append(
        entry(msg("ours in theirs"), {"project", "\\Seen"}, rec.internal_date)
    )
    user.create("Neu/\u00dcbersicht")
    user.deliver(msg("neu"), "Neu/\u00dcbersicht", flags=["\\Seen", "$Forwarded"], internal_date=D1)
    model.folders["Neu"] = []
    model.folders["Neu/\u00dcbersicht"] = [entry(msg("neu"), {"\\Seen", "$Forwarded"}, D1)]
    inbox.copy([uid_of(user, "INBOX", b"d report")], user.mailbox("Work/Projects"))
    model.copy("INBOX", b"d report", "Work/Projects")
    user.mailbox("Archive").move([uid_of(user, "Archive", b"d plan")], user.mailbox("R&D"))
    model.move("Archive", b"d plan", "R&D")
    user.delete("Notes/~old")
    del model.folders["Notes/~old"]
    model.noselect.discard("Notes")
    check_views(model, user, server, port)


# --- folder permissions, and a known difference ------------------------------------------


def test_dovecot_renames_a_folder_we_made_in_a_group_shared_maildir(
    workdir: Path, dovecot: Callable[..., Dovecot]
) -> None:
    maildir = workdir / "mail" / "alice"
    for sub in ("cur", "new", "tmp"):  # prepared by an administrator, group-shared
        (maildir / sub).mkdir(mode=0o770, parents=True)
    maildir.chmod(0o770)
    user = MaildirStore(workdir / "mail").user("alice")
    user.create("Mine")
    user.deliver(msg("mine"), "Mine")
    server = dovecot(maildir, mode=0o770)
    with imap_session(server.imap_port, server.user, server.password) as client:
        assert client.create(quote("Theirs"))[0] == "OK"
        assert client.rename(quote("Theirs"), quote("Old/Theirs"))[0] == "OK"
        typ, data = client.rename(quote("Mine"), quote("Old/Mine"))
        assert typ == "OK", data


@pytest.mark.xfail(
    strict=True,
    reason="subscriptions live in mailproto-user.sqlite, not in Dovecot's `subscriptions` "
    "file (docs/mda-store.md, 'Not done yet')",
)
def test_subscriptions_are_shared(workdir: Path, dovecot: Callable[..., Dovecot]) -> None:
    maildir = workdir / "mail" / "alice"
    user = MaildirStore(workdir / "mail").user("alice")
    user.create("Lists/Python")
    user.subscribe("Lists/Python")
    server = dovecot(maildir)
    with imap_session(server.imap_port, server.user, server.password) as client:
        assert client.create(quote("Theirs"))[0] == "OK"
        assert client.subscribe(quote("Theirs"))[0] == "OK"
        _typ, listed = client.lsub('""', "*")
    names = {line.decode().rsplit(" ", 1)[1].strip('"') for line in listed if line}
    assert "Theirs" in user.subscriptions()
    assert "Lists/Python" in names
