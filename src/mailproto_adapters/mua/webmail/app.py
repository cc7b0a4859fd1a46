"""The webmail application: an IMAP and SMTP client of our MDA and MTA behind HTTP.

`Webmail` holds the configuration, the sessions and the router; ``session`` is the
connection flow for `AnyIOServer` and ``serve`` runs one. Every request that changes
something is a POST carrying the session's CSRF token (compared in constant time) and,
when the browser sends them, an ``Origin`` of this server and a ``Sec-Fetch-Site`` that
is not cross-site. Every response carries the security headers (`SECURITY_HEADERS`).

IMAP use (RFC 9051): LIST for folders (RFC 6154 SPECIAL-USE attributes name Sent,
Drafts and Trash), STATUS for unread counts, a page of the message list with one FETCH
of a sequence range (newest first) or, when searching, one UID SEARCH and one UID FETCH
of the page, UID STORE for flags, UID MOVE (RFC 6851) to move and delete to Trash,
APPEND for Sent and Drafts. Submission (RFC 6409) with AUTH (RFC 4954) on the MTA.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import importlib.resources
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.to_thread
import attrs

from ..._effects import Op, TransportInfo
from ..._serve_async import AnyIOServer
from ..._serving import ServeConfig
from ..._transport import TransportError
from ...anyio import AsyncIMAPClient, AsyncSMTPClient
from ...errors import AuthenticationFailed, MailError, RecipientsRefused, ServerError
from . import message as m
from .http import HTTPError, HTTPLimits, HTTPServer, Request, Response, Router
from .pages import FolderRow, ListRow, esc, human_size, layout, login_page, move_select, url
from .sessions import COOKIE, IMAPEndpoint, Session, SessionStore

__all__ = ["SECURITY_HEADERS", "SubmissionEndpoint", "Webmail", "WebmailConfig"]

log = logging.getLogger("mailproto.webmail")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "frame-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
# The sanitised message HTML: nothing but its own data: images (and remote ones when the
# reader asked), inline style attributes, no script, in a sandbox of its own.
FRAME_CSP = (
    "default-src 'none'; img-src data:{remote}; style-src 'unsafe-inline'; font-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
SECURITY_HEADERS = (
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)
NOTES = {
    "sent": "Message sent.",
    "sent-unsaved": "Message sent, but the copy for Sent could not be saved.",
    "draft": "Draft saved.",
    "moved": "Moved.",
    "deleted": "Moved to Trash.",
    "expunged": "Deleted for good.",
    "emptied": "Trash emptied.",
    "flagged": "Done.",
    "loggedout": "You are signed out.",
    "expired": "Your session has ended; please sign in again.",
}
SPECIAL = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive")
LIST_ITEMS = "(UID FLAGS ENVELOPE RFC822.SIZE BODYSTRUCTURE)"
COUNTS_TTL = 30.0  # seconds the sidebar's unread counts are reused


@attrs.frozen(kw_only=True)
class SubmissionEndpoint:
    """Where the MTA's submission port is (RFC 6409) and how to reach it."""

    host: str = "127.0.0.1"
    port: int = 587
    tls: ssl.SSLContext | bool = False
    starttls: ssl.SSLContext | bool | None = False
    timeout: float = 60.0


@attrs.frozen(kw_only=True)
class WebmailConfig:
    """The webmail's knobs; the defaults suit the embedded system on loopback."""

    domain: str = "localhost"  # appended to a user name without "@" for From
    page_size: int = 50
    idle_timeout: float = 30 * 60.0
    max_age: float = 12 * 3600.0
    max_sessions: int = 10_000
    poll_interval: float = 5.0  # seconds between two looks for new mail (SSE)
    events_lifetime: float = 600.0  # an SSE stream ends after this; the browser reconnects
    limits: HTTPLimits = attrs.field(factory=HTTPLimits)
    clock: Callable[[], float] = time.monotonic


def _origin_ok(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    # Our pages send Referrer-Policy: no-referrer, so a browser's own same-origin form
    # POST carries "Origin: null"; Sec-Fetch-Site (which no page can set) says it is
    # ours. The CSRF token is checked as well in any case.
    if origin is None or (origin == "null" and site == "same-origin"):
        return True
    host = request.headers.get("host", "")
    scheme = "https" if request.secure else "http"
    return origin == f"{scheme}://{host}"


class Webmail:
    """The webmail. ``await tg.start(webmail.serve, host, port)``, or give
    ``webmail.session`` to an `AnyIOServer` of your own.

    ``authenticator``: the MDA's `Authenticator` when running in the same process; the
    login is then checked and throttled by it (per browser IP and per user, shared with
    IMAP, POP3 and submission) before the IMAP LOGIN. Without it the IMAP server's own
    throttling applies (which sees the webmail's address, not the browser's).
    """

    def __init__(
        self,
        *,
        imap: tuple[str, int] | IMAPEndpoint = ("127.0.0.1", 143),
        submission: tuple[str, int] | SubmissionEndpoint = ("127.0.0.1", 587),
        authenticator: Any = None,
        config: WebmailConfig | None = None,
    ) -> None:
        self.imap = (
            imap if isinstance(imap, IMAPEndpoint) else IMAPEndpoint(host=imap[0], port=imap[1])
        )
        self.submission = (
            submission
            if isinstance(submission, SubmissionEndpoint)
            else SubmissionEndpoint(host=submission[0], port=submission[1])
        )
        self.authenticator = authenticator
        self.config = config or WebmailConfig()
        self.sessions = SessionStore(
            idle_timeout=self.config.idle_timeout,
            max_age=self.config.max_age,
            max_sessions=self.config.max_sessions,
            clock=self.config.clock,
        )
        self.http = HTTPServer(self.handle, limits=self.config.limits, error_page=self._error)
        self.router = Router()
        self._server: AnyIOServer | None = None
        self._static = _load_static()
        r = self.router
        r.add("GET", "/", self.home)
        r.add("GET", "/login", self.login_form)
        r.add("POST", "/login", self.login)
        r.add("POST", "/logout", self.logout)
        r.add("GET", "/static/*", self.static)
        r.add("GET", "/list", self.message_list)
        r.add("GET", "/msg", self.read)
        r.add("GET", "/msg/html", self.read_html)
        r.add("GET", "/msg/part", self.part)
        r.add("GET", "/compose", self.compose_form)
        r.add("POST", "/compose", self.compose)
        r.add("POST", "/action", self.action)
        r.add("POST", "/trash/empty", self.empty_trash)
        r.add("GET", "/events", self.events)

    # -- serving --------------------------------------------------------------------------

    def session(self, info: TransportInfo) -> Op[None]:
        """The connection flow (a `SessionFactory` for our servers)."""
        return self.http.session(info)

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 8025,
        *,
        tls: ssl.SSLContext | None = None,
        max_connections: int = 512,
        max_per_ip: int = 64,
        task_status: Any = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and serve until `close`; reports the port to ``task_status``."""
        config = ServeConfig(
            host=host,
            port=port,
            tls=tls,
            max_connections=max_connections,
            max_per_ip=max_per_ip,
            busy=b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n",
            grace=2.0,
            name="webmail",
        )
        self._server = AnyIOServer(self.session, config)
        try:
            await self._server.serve(task_status=task_status)
        finally:
            with anyio.CancelScope(shield=True):
                await self.end_sessions()

    async def close(self, grace: float | None = None) -> None:
        """Stop serving (sessions get ``grace`` seconds), log every session out."""
        if self._server is not None:
            await self._server.close(grace)
        await self.end_sessions()

    async def end_sessions(self) -> None:
        for session in self.sessions.all():
            self.sessions.remove(session)
            await session.end()

    # -- every request ---------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        try:
            handler = self.router.resolve(request.method, request.path)
        except HTTPError as exc:
            response = self._error(exc.status, exc.message)
            if exc.status == 405:
                response.header("Allow", self.router.allowed(request.path))
            return self._secure(response, request)
        try:
            response = await handler(request)
        except _Redirect as exc:
            response = _redirect(exc.location)
        except HTTPError as exc:
            response = self._error(exc.status, exc.message)
        except m.HeaderInjection as exc:
            response = self._error(400, str(exc))
        except ServerError as exc:
            log.info("webmail: the mail server refused: %s", exc)
            status = 404 if "NONEXISTENT" in str(exc) else 400
            response = self._error(status, f"The mail server refused: {exc.text}")
        except (TransportError, MailError, OSError) as exc:
            log.warning("webmail: mail server unreachable: %s", exc)
            response = self._error(502, "The mail server cannot be reached now.")
        return self._secure(response, request)

    def _secure(self, response: Response, request: Request | None) -> Response:
        names = {n.lower() for n, _ in response.headers}
        for name, value in SECURITY_HEADERS:
            if name.lower() not in names:
                response.header(name, value)
        if "content-security-policy" not in names:
            response.header("Content-Security-Policy", CSP)
            response.header("X-Frame-Options", "DENY")
        if "cache-control" not in names:
            response.header("Cache-Control", "no-store")
        if request is not None and request.secure:
            response.header("Strict-Transport-Security", "max-age=31536000")
        return response

    def _error(self, status: int, message: str) -> Response:
        body = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            f'<title>{status}</title><link rel=stylesheet href="/static/style.css"></head>'
            f'<body class="login"><main class="login-box"><h1>{status}</h1>'
            f'<p>{esc(message)}</p><p><a href="/">Back to the mail</a></p></main>'
            "</body></html>"
        )
        response = Response(
            status=status,
            headers=[("Content-Type", "text/html; charset=utf-8")],
            body=body.encode(),
        )
        return self._secure(response, None)

    async def _session(self, request: Request) -> Session | None:
        session, ended = self.sessions.get(request.cookie(COOKIE))
        for old in ended:
            await old.end()
        return session

    async def _require(self, request: Request) -> Session:
        """The request's session; for a POST also a valid CSRF token and origin."""
        session = await self._session(request)
        if session is None:
            if request.method == "GET" and request.path in ("/list", "/msg", "/compose", "/"):
                raise _Redirect("/login?note=expired")
            raise HTTPError(403, "Your session has ended; please sign in again.")
        if request.method == "POST":
            if not _origin_ok(request):
                raise HTTPError(403, "This request came from another site.")
            if not session.check_csrf(request.field("csrf")):
                raise HTTPError(403, "The form is out of date (CSRF check failed).")
        return session

    def _cookie(self, request: Request, value: str, max_age: int | None) -> str:
        parts = [f"{COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if request.secure:
            parts.append("Secure")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        return "; ".join(parts)

    # -- login ------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        session = await self._session(request)
        return _redirect(url("/list", f="INBOX") if session else "/login")

    async def login_form(self, request: Request) -> Response:
        if await self._session(request) is not None:
            return _redirect(url("/list", f="INBOX"))
        note = NOTES.get(request.arg("note"), "")
        return _html(login_page(note=note))

    async def login(self, request: Request) -> Response:
        if not _origin_ok(request):
            raise HTTPError(403, "This request came from another site.")
        user = request.field("user").strip()
        password = request.field("password")
        if not user or not password or len(user) > 256 or len(password) > 1024:
            return _html(login_page("Give a user name and a password.", user), 400)
        if any(c in user for c in "\r\n\x00") or "\x00" in password:
            return _html(login_page("Wrong user name or password.", ""), 400)
        auth = self.authenticator
        if auth is not None:
            ip = request.client_ip
            outcome = await anyio.to_thread.run_sync(auth.check_login, user, password, ip)
            if not outcome.ok:
                await anyio.sleep(outcome.delay)
                if outcome.code == "temporary":
                    text = "Too many failed sign-ins from here; try again later."
                    return _html(login_page(text, user), 429)
                return _html(login_page("Wrong user name or password.", user), 403)
            user = outcome.username
        previous = await self._session(request)
        if previous is not None:  # a new login replaces the session it was made from
            self.sessions.remove(previous)
            await previous.end()
        session = self.sessions.create(user, password, self.imap)
        try:
            session.client = await session.login()
        except AuthenticationFailed:
            self.sessions.remove(session)
            await session.end()
            return _html(login_page("Wrong user name or password.", user), 403)
        except (TransportError, MailError, OSError) as exc:
            self.sessions.remove(session)
            await session.end()
            log.warning("webmail: login: IMAP server unreachable: %s", exc)
            return _html(login_page("The mail server cannot be reached now.", user), 502)
        log.info("webmail: login user=%r ip=%s", session.user, request.client_ip)
        response = _redirect(url("/list", f="INBOX"))
        response.header("Set-Cookie", self._cookie(request, session.id, None))
        return response

    async def logout(self, request: Request) -> Response:
        session = await self._require(request)
        self.sessions.remove(session)
        await session.end()
        response = _redirect("/login?note=loggedout")
        response.header("Set-Cookie", self._cookie(request, "", 0))
        response.header("Clear-Site-Data", '"cookies", "storage"')
        return response

    # -- static files ------------------------------------------------------------------------

    async def static(self, request: Request) -> Response:
        found = self._static.get(request.path.removeprefix("/static/"))
        if found is None:
            raise HTTPError(404)
        ctype, data, etag = found
        if request.headers.get("if-none-match") == etag:
            return Response(status=304, headers=[("ETag", etag)])
        return Response(
            headers=[
                ("Content-Type", ctype),
                ("ETag", etag),
                ("Cache-Control", "private, max-age=3600"),
            ],
            body=data,
        )

    # -- folders -----------------------------------------------------------------------------

    async def _folders(self, session: Session, client: AsyncIMAPClient) -> list[FolderRow]:
        listing = await client.list("", "*")
        rows = []
        for entry in listing:
            attrs_ = {a.lower() for a in entry.attributes}
            if "\\noselect" in attrs_ or "\\nonexistent" in attrs_:
                continue
            special = next((s for s in SPECIAL if s.lower() in attrs_), None)
            if special is not None:
                session.folders.setdefault(special, entry.mailbox)
            rows.append((entry.mailbox, special))
        now = time.monotonic()
        counts = session.unseen
        if now - session.unseen_at > COUNTS_TTL or any(name not in counts for name, _ in rows):
            counts.clear()
            for name, _ in rows:
                status = await client.status(name, ("UNSEEN",))
                unseen = status.get("UNSEEN")
                counts[name] = unseen if isinstance(unseen, int) else 0
            session.unseen_at = now
        order = {"INBOX": 0, "\\Drafts": 1, "\\Sent": 2, "\\Archive": 3, "\\Junk": 4}
        order["\\Trash"] = 5
        rows.sort(key=lambda x: (order.get(x[0] if x[0] == "INBOX" else x[1] or "", 9), x[0]))
        return [
            FolderRow(
                name=name,
                label="Inbox" if name == "INBOX" else name,
                unseen=counts.get(name, 0),
                special=special,
            )
            for name, special in rows
        ]

    def _special(self, session: Session, use: str) -> str:
        return session.folders.get(use) or use.lstrip("\\")

    async def _select(self, client: AsyncIMAPClient, folder: str) -> None:
        box = client.mailbox
        if box is not None and box.name == folder and not box.read_only:
            await client.noop()
        else:
            await client.select(folder)

    def _page(
        self,
        session: Session,
        folders: list[FolderRow],
        current: str,
        title: str,
        body: str,
        note: str = "",
        page_class: str = "",
    ) -> Response:
        text = layout(
            title=title,
            user=session.user,
            csrf=session.csrf,
            folders=folders,
            current=current,
            body=body,
            note=NOTES.get(note, ""),
            page_class=page_class,
        )
        return _html(text)

    # -- the message list --------------------------------------------------------------------

    async def message_list(self, request: Request) -> Response:
        session = await self._require(request)
        folder = request.arg("f", "INBOX")
        query = request.arg("q").strip()
        field = request.arg("in", "text")
        if field not in ("text", "from", "subject"):
            field = "text"
        try:
            page = max(1, min(int(request.arg("page", "1")), 1_000_000))
        except ValueError:
            page = 1
        size = self.config.page_size

        async def work(client: AsyncIMAPClient) -> tuple[list[FolderRow], list[ListRow], int]:
            folders = await self._folders(session, client)
            await self._select(client, folder)
            box = client.mailbox
            total = box.exists if box is not None else 0
            fetched: dict[int, Any] = {}
            if query:
                criteria = f"{field.upper()} {_quote(query)}"
                uids = await client.search(criteria)
                total = len(uids)
                chosen = list(reversed(uids))[(page - 1) * size : page * size]
                if chosen:
                    fetched = await client.fetch(chosen, LIST_ITEMS)
                order = chosen
            else:
                high = total - (page - 1) * size
                low = max(1, high - size + 1)
                order = []
                if high >= 1:
                    by_seq = await client.fetch(f"{low}:{high}", LIST_ITEMS, uid=False)
                    for seq in sorted(by_seq, reverse=True):
                        result = by_seq[seq]
                        if isinstance(result.get("UID"), int):
                            fetched[result["UID"]] = result
                            order.append(result["UID"])
            rows = [_row(uid, fetched[uid]) for uid in order if uid in fetched]
            return folders, rows, total

        folders, rows, total = await session.run(work)
        pages = max(1, -(-total // size))
        is_trash = folder == self._special(session, "\\Trash")
        body = _list_body(
            session=session,
            folder=folder,
            folders=folders,
            rows=rows,
            query=query,
            field=field,
            page=page,
            pages=pages,
            total=total,
            is_trash=is_trash,
        )
        label = "Inbox" if folder == "INBOX" else folder
        return self._page(session, folders, folder, label, body, request.arg("note"), "list")

    # -- reading -----------------------------------------------------------------------------

    def _uid(self, request: Request, name: str = "uid") -> int:
        raw = request.arg(name) or request.field(name)
        if not raw.isdigit() or not 0 < int(raw) < 2**32:
            raise HTTPError(400, "Bad message number.")
        return int(raw)

    async def _fetch_whole(self, session: Session, folder: str, uid: int) -> tuple[bytes, Any]:
        async def work(client: AsyncIMAPClient) -> tuple[bytes, Any]:
            await self._select(client, folder)
            got = await client.fetch(uid, "(UID FLAGS BODY.PEEK[])")
            if uid not in got:
                raise HTTPError(404, "No such message (it may have been moved or deleted).")
            return got[uid].get("BODY[]") or b"", got[uid].get("FLAGS", ())

        result: tuple[bytes, Any] = await session.run(work)
        return result

    async def read(self, request: Request) -> Response:
        session = await self._require(request)
        folder = request.arg("f", "INBOX")
        uid = self._uid(request)

        async def work(client: AsyncIMAPClient) -> Any:
            folders = await self._folders(session, client)
            await self._select(client, folder)
            got = await client.fetch(uid, "(UID FLAGS BODY.PEEK[])")
            if uid not in got:
                raise HTTPError(404, "No such message (it may have been moved or deleted).")
            flags = got[uid].get("FLAGS", ())
            if "\\Seen" not in flags:
                await client.store(uid, ["\\Seen"], "add", silent=True)
                if session.unseen.get(folder):
                    session.unseen[folder] -= 1
                    folders = [
                        attrs.evolve(f, unseen=f.unseen - 1) if f.name == folder else f
                        for f in folders
                    ]
            # The list is in arrival (sequence) order: the neighbours are seq -1 and +1.
            seq = got[uid].seq
            box = client.mailbox
            last = max(box.exists if box is not None else seq, seq)
            around = await client.fetch(
                f"{max(seq - 1, 1)}:{min(seq + 1, last)}", "(UID)", uid=False
            )
            older = [r["UID"] for n, r in around.items() if n == seq - 1 and "UID" in r]
            newer = [r["UID"] for n, r in around.items() if n == seq + 1 and "UID" in r]
            return folders, got[uid].get("BODY[]") or b"", flags, older, newer

        folders, data, flags, older, newer = await session.run(work)
        parsed = await anyio.to_thread.run_sync(m.read_message, data)
        body = _read_body(
            session=session,
            folder=folder,
            folders=folders,
            uid=uid,
            msg=parsed,
            flags=flags,
            older=older[-1] if older else None,
            newer=newer[0] if newer else None,
            images=request.arg("images") == "1",
            is_trash=folder == self._special(session, "\\Trash"),
            is_drafts=folder == self._special(session, "\\Drafts"),
        )
        return self._page(
            session,
            folders,
            folder,
            parsed.subject or "(no subject)",
            body,
            request.arg("note"),
            "read",
        )

    async def read_html(self, request: Request) -> Response:
        """The message's HTML part, sanitised, for the sandboxed iframe."""
        session = await self._require(request)
        folder = request.arg("f", "INBOX")
        uid = self._uid(request)
        load_remote = request.arg("images") == "1"
        data, _ = await self._fetch_whole(session, folder, uid)

        def render() -> str:
            parsed = m.read_message(data)
            if parsed.html is None:
                return ""
            cleaned, _ = m.sanitize_html(
                parsed.html, m.inline_images(data), load_remote=load_remote
            )
            return cleaned

        cleaned = await anyio.to_thread.run_sync(render)
        page = (
            '<!doctype html><html><head><meta charset="utf-8">'
            '<meta name="referrer" content="no-referrer"></head><body>' + cleaned + "</body></html>"
        )
        remote = " https: http:" if load_remote else ""
        return Response(
            headers=[
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Security-Policy", FRAME_CSP.format(remote=remote)),
                ("X-Frame-Options", "SAMEORIGIN"),
                ("Cache-Control", "private, no-store"),
            ],
            body=page.encode("utf-8"),
        )

    async def part(self, request: Request) -> Response:
        """An attachment, as a download with its (sanitised) name and its type."""
        session = await self._require(request)
        folder = request.arg("f", "INBOX")
        uid = self._uid(request)
        raw = request.arg("part")
        if not raw.isdigit() or int(raw) > 10_000:
            raise HTTPError(400, "Bad part number.")
        data, _ = await self._fetch_whole(session, folder, uid)
        found = await anyio.to_thread.run_sync(m.message_part, data, int(raw))
        if found is None:
            raise HTTPError(404, "No such part.")
        filename, ctype, payload = found
        if not _token_type(ctype):
            ctype = "application/octet-stream"
        return Response(
            headers=[
                ("Content-Type", ctype),
                ("Content-Disposition", m.content_disposition(filename)),
                ("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", "default-src 'none'; sandbox"),
                ("Cache-Control", "private, no-store"),
            ],
            body=payload,
        )

    # -- writing -----------------------------------------------------------------------------

    def _address(self, session: Session) -> str:
        return session.user if "@" in session.user else f"{session.user}@{self.config.domain}"

    async def compose_form(self, request: Request) -> Response:
        session = await self._require(request)
        mode = request.arg("mode")
        fields = {
            "to": "",
            "cc": "",
            "subject": "",
            "body": "",
            "in_reply_to": "",
            "references": "",
            "fwd_f": "",
            "fwd_uid": "",
        }
        folder = request.arg("f", "INBOX")

        async def work(client: AsyncIMAPClient) -> Any:
            folders = await self._folders(session, client)
            data = b""
            if mode in ("reply", "replyall", "forward"):
                uid = self._uid(request)
                await self._select(client, folder)
                got = await client.fetch(uid, "(UID BODY.PEEK[])")
                if uid not in got:
                    raise HTTPError(404, "No such message.")
                data = got[uid].get("BODY[]") or b""
            return folders, data

        folders, data = await session.run(work)
        if data:
            original = m.read_message(data)
            fields.update(_prefill(mode, original, self._address(session)))
            if mode == "forward":
                fields["fwd_f"], fields["fwd_uid"] = folder, request.arg("uid")
            else:
                fields["reply_f"], fields["reply_uid"] = folder, request.arg("uid")
        body = _compose_body(session, fields, error="")
        return self._page(session, folders, folder, "Write", body, "", "compose")

    async def compose(self, request: Request) -> Response:
        session = await self._require(request)
        draft = request.field("action") == "draft"
        try:
            to = m.split_addresses("To", request.field("to"))
            cc = m.split_addresses("Cc", request.field("cc"))
            bcc = m.split_addresses("Bcc", request.field("bcc"))
            if not draft and not (to or cc or bcc):
                raise ValueError("Give at least one recipient.")
            forwarded = None
            if request.field("fwd_uid"):
                uid = self._uid(request, "fwd_uid")
                forwarded, _ = await self._fetch_whole(session, request.field("fwd_f"), uid)
            message = m.build_message(
                sender=self._address(session),
                to=to,
                cc=cc,
                bcc=bcc,
                subject=request.field("subject"),
                body=request.field("body"),
                attachments=[(u.filename, u.content_type, u.read()) for u in request.uploads],
                in_reply_to=request.field("in_reply_to"),
                references=request.field("references"),
                forwarded=forwarded,
                domain=self.config.domain,
            )
            data = message.as_bytes()
        except (ValueError, m.HeaderInjection) as exc:
            return await self._compose_again(session, request, str(exc))
        if draft:
            folder = self._special(session, "\\Drafts")

            async def save(client: AsyncIMAPClient) -> None:
                await client.append(folder, data, ("\\Draft", "\\Seen"))

            await session.run(save, retry=False)
            return _redirect(url("/list", f=folder, note="draft"))
        try:
            await self._submit(session, message)
        except RecipientsRefused as exc:
            refused = ", ".join(sorted(exc.refused))
            return await self._compose_again(session, request, f"Refused recipients: {refused}")
        except AuthenticationFailed:
            return await self._compose_again(session, request, "The mail server refused us.")
        except ServerError as exc:
            return await self._compose_again(session, request, f"Not sent: {exc.text}")
        sent = self._special(session, "\\Sent")

        async def keep(client: AsyncIMAPClient) -> None:
            await client.append(sent, data, ("\\Seen",))
            original = request.field("in_reply_to")
            if original and request.field("reply_f") and request.field("reply_uid").isdigit():
                await self._select(client, request.field("reply_f"))
                await client.store(int(request.field("reply_uid")), ["\\Answered"], silent=True)

        try:
            await session.run(keep, retry=False)
        except (MailError, TransportError, OSError) as exc:
            log.warning("webmail: sent, but no copy in %s: %s", sent, exc)
            return _redirect(url("/list", f="INBOX", note="sent-unsaved"))
        return _redirect(url("/list", f="INBOX", note="sent"))

    async def _submit(self, session: Session, message: Any) -> None:
        sub = self.submission
        async with AsyncSMTPClient(
            sub.host, sub.port, tls=sub.tls, starttls=sub.starttls, timeout=sub.timeout
        ) as smtp:
            await smtp.login(session.user, session.password)
            await smtp.send_message(message)

    async def _compose_again(self, session: Session, request: Request, error: str) -> Response:
        keys = (
            "to",
            "cc",
            "bcc",
            "subject",
            "body",
            "in_reply_to",
            "references",
            "fwd_f",
            "fwd_uid",
            "reply_f",
            "reply_uid",
        )
        fields = {k: request.field(k) for k in keys}

        async def work(client: AsyncIMAPClient) -> list[FolderRow]:
            return await self._folders(session, client)

        folders = await session.run(work)
        body = _compose_body(session, fields, error=error)
        response = self._page(session, folders, "INBOX", "Write", body, "", "compose")
        response.status = 400
        return response

    # -- changes -----------------------------------------------------------------------------

    async def action(self, request: Request) -> Response:
        session = await self._require(request)
        folder = request.field("f", "INBOX")
        op = request.field("op")
        uids = [int(u) for u in request.form.get("uid", []) if u.isdigit() and 0 < int(u) < 2**32]
        target = request.field("to")
        trash = self._special(session, "\\Trash")
        if op not in ("flag", "unflag", "seen", "unseen", "move", "delete"):
            raise HTTPError(400, "Unknown action.")
        if op == "move" and not target:
            raise HTTPError(400, "Choose a folder to move to.")
        note = "flagged"

        async def work(client: AsyncIMAPClient) -> None:
            nonlocal note
            if not uids:
                return
            await self._select(client, folder)
            if op in ("flag", "unflag"):
                await client.store(
                    uids, ["\\Flagged"], "add" if op == "flag" else "remove", silent=True
                )
            elif op in ("seen", "unseen"):
                await client.store(
                    uids, ["\\Seen"], "add" if op == "seen" else "remove", silent=True
                )
            elif op == "move":
                await client.move(uids, target)
                note = "moved"
            elif folder == trash:
                await client.store(uids, ["\\Deleted"], "add", silent=True)
                await client.expunge(uids)
                note = "expunged"
            else:
                await client.move(uids, trash)
                note = "deleted"

        await session.run(work)
        session.unseen_at = 0.0
        back = request.field("back")
        if back == "msg" and uids and op in ("flag", "unflag", "seen"):
            return _redirect(url("/msg", f=folder, uid=uids[0]))
        if back == "msg" and request.field("next").isdigit() and op in ("move", "delete"):
            return _redirect(url("/msg", f=folder, uid=request.field("next"), note=note))
        return _redirect(url("/list", f=folder, note=note))

    async def empty_trash(self, request: Request) -> Response:
        session = await self._require(request)
        trash = self._special(session, "\\Trash")

        async def work(client: AsyncIMAPClient) -> None:
            await client.select(trash)
            box = client.mailbox
            if box is not None and box.exists:
                await client.store("1:*", ["\\Deleted"], "add", uid=False, silent=True)
                await client.expunge()

        await session.run(work)
        session.unseen_at = 0.0
        return _redirect(url("/list", f=trash, note="emptied"))

    # -- new mail ----------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        """Server-sent events: ``mail`` with the folder's counts when they change."""
        session = await self._require(request)
        folder = request.arg("f", "INBOX")
        interval = self.config.poll_interval
        lifetime = self.config.events_lifetime
        clock = self.config.clock

        async def look(
            previous: tuple[Any, ...] | None, client: AsyncIMAPClient
        ) -> dict[str, int | str]:
            box = client.mailbox
            if box is not None and box.name == folder and previous is not None:
                # Selected: NOOP hears of new and expunged mail for almost nothing.
                await client.noop()
                if client.mailbox is not None and client.mailbox.exists == previous[0]:
                    return dict(zip(("MESSAGES", "UIDNEXT", "UNSEEN"), previous, strict=True))
            status = await client.status(folder, ("MESSAGES", "UIDNEXT", "UNSEEN"))
            unseen = status.get("UNSEEN")
            if isinstance(unseen, int):
                session.unseen[folder] = unseen
            return status

        async def stream() -> AsyncIterator[bytes]:
            last: tuple[Any, ...] | None = None
            started = time.monotonic()
            yield b"retry: 10000\n\n"
            while time.monotonic() - started < lifetime:
                if session.closed or self.sessions.expired(session, clock()):
                    yield b"event: end\ndata: {}\n\n"
                    return
                try:
                    status = await session.run(functools.partial(look, last))
                except (MailError, TransportError, OSError):
                    yield b"event: end\ndata: {}\n\n"
                    return
                now = (status.get("MESSAGES"), status.get("UIDNEXT"), status.get("UNSEEN"))
                if last is not None and now != last:
                    data = json.dumps(
                        {
                            "folder": folder,
                            "messages": now[0],
                            "unseen": now[2],
                            "new": now[1] != last[1],
                        }
                    )
                    yield f"event: mail\ndata: {data}\n\n".encode()
                else:
                    yield b": ping\n\n"
                last = now
                await anyio.sleep(interval)

        return Response(
            headers=[
                ("Content-Type", "text/event-stream"),
                ("Cache-Control", "no-store"),
                ("X-Accel-Buffering", "no"),
            ],
            body=stream(),
        )


# -- helpers -------------------------------------------------------------------------------


class _Redirect(HTTPError):
    def __init__(self, location: str) -> None:
        super().__init__(303, location)
        self.location = location


def _redirect(location: str) -> Response:
    return Response(status=303, headers=[("Location", location)])


def _html(text: str, status: int = 200) -> Response:
    return Response(
        status=status,
        headers=[("Content-Type", "text/html; charset=utf-8")],
        body=text.encode("utf-8"),
    )


def _quote(text: str) -> str:
    """An IMAP quoted string (RFC 9051 4.3); line breaks are dropped from a search."""
    text = " ".join(text.replace("\x00", " ").split())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _token_type(ctype: str) -> bool:
    main, _, sub = ctype.partition("/")
    ok = set("abcdefghijklmnopqrstuvwxyz0123456789!#$&-^_.+")
    return bool(main) and bool(sub) and set(main) <= ok and set(sub) <= ok


def _row(uid: int, result: Any) -> ListRow:
    envelope = result.get("ENVELOPE")
    flags = result.get("FLAGS", ())
    date = ""
    if envelope is not None and envelope.date:
        try:
            parsed = email.utils.parsedate_to_datetime(envelope.date.decode("ascii", "replace"))
            date = parsed.strftime("%Y-%m-%d %H:%M")
        except (ValueError, TypeError):
            date = envelope.date.decode("ascii", "replace")[:32]
    return ListRow(
        uid=uid,
        sender=m.format_addresses(envelope.from_ if envelope is not None else None),
        subject=m.decode_header(envelope.subject if envelope is not None else None),
        date=date,
        size=int(result.get("RFC822.SIZE") or 0),
        seen="\\Seen" in flags,
        flagged="\\Flagged" in flags,
        answered="\\Answered" in flags,
        attachment=m.has_attachment(result.get("BODYSTRUCTURE")),
    )


def _list_body(
    *,
    session: Session,
    folder: str,
    folders: list[FolderRow],
    rows: list[ListRow],
    query: str,
    field: str,
    page: int,
    pages: int,
    total: int,
    is_trash: bool,
) -> str:
    label = "Inbox" if folder == "INBOX" else folder
    heading = f"<h1>{esc(label)}</h1>"
    if query:
        heading = (
            f'<h1>{esc(label)}: “{esc(query)}”</h1><p class="muted">{total} found · '
            f'<a href="{esc(url("/list", f=folder))}">clear search</a></p>'
        )
    choices = "".join(
        f'<option value="{k}"{" selected" if k == field else ""}>{v}</option>'
        for k, v in (("text", "Anywhere"), ("from", "From"), ("subject", "Subject"))
    )
    search = (
        f'<form class="search-full" method=get action="/list" role="search">'
        f'<input type=hidden name=f value="{esc(folder)}">'
        f'<input type=search name=q value="{esc(query)}" placeholder="Search {esc(label)}" '
        f'aria-label="Search"><select name=in aria-label="Search in">{choices}</select>'
        f"<button type=submit>Search</button></form>"
    )
    trs = []
    for row in rows:
        href = url("/msg", f=folder, uid=row.uid)
        cls = "unread" if not row.seen else "read"
        marks = (
            ('<span class="mark flag" title="Flagged">★</span>' if row.flagged else "")
            + ('<span class="mark att" title="Attachment">📎</span>' if row.attachment else "")
            + ('<span class="mark ans" title="Answered">↩</span>' if row.answered else "")
        )
        trs.append(
            f'<tr class="{cls}" data-href="{esc(href)}">'
            f'<td class="pick"><input type=checkbox name=uid value="{row.uid}" '
            f'aria-label="Select"></td>'
            f'<td class="from"><a href="{esc(href)}">{esc(row.sender or "(unknown)")}</a></td>'
            f'<td class="subject"><a href="{esc(href)}">{esc(row.subject or "(no subject)")}'
            f"</a></td>"
            f'<td class="marks">{marks}</td>'
            f'<td class="date">{esc(row.date)}</td>'
            f'<td class="size">{esc(human_size(row.size))}</td></tr>'
        )
    table = (
        '<table class="messages"><thead><tr><th class="pick"></th><th>From</th>'
        "<th>Subject</th><th></th><th>Date</th><th>Size</th></tr></thead><tbody>"
        + "".join(trs)
        + "</tbody></table>"
        if trs
        else '<p class="empty">No messages here.</p>'
    )
    actions = (
        '<div class="actions">'
        "<button name=op value=delete type=submit>Delete</button>"
        "<button name=op value=seen type=submit>Mark read</button>"
        "<button name=op value=unseen type=submit>Mark unread</button>"
        "<button name=op value=flag type=submit>Flag</button>"
        "<button name=op value=unflag type=submit>Unflag</button>"
        + move_select(folders, folder)
        + "</div>"
    )
    form = (
        f'<form method=post action="/action" id="list-form">'
        f'<input type=hidden name=csrf value="{esc(session.csrf)}">'
        f'<input type=hidden name=f value="{esc(folder)}">' + actions + table + "</form>"
    )
    empty = ""
    if is_trash and rows:
        empty = (
            '<form method=post action="/trash/empty" class="danger-zone">'
            f'<input type=hidden name=csrf value="{esc(session.csrf)}">'
            '<button type=submit class="danger">Empty Trash</button></form>'
        )
    nav = []
    if page > 1:
        prev = url("/list", f=folder, q=query, page=page - 1, **({"in": field} if query else {}))
        nav.append(f'<a rel=prev href="{esc(prev)}">← Newer</a>')
    nav.append(f'<span class="muted">Page {page} of {pages}</span>')
    if page < pages:
        nxt = url("/list", f=folder, q=query, page=page + 1, **({"in": field} if query else {}))
        nav.append(f'<a rel=next href="{esc(nxt)}">Older →</a>')
    pager = '<nav class="pager">' + " ".join(nav) + "</nav>"
    return heading + search + form + empty + pager


def _read_body(
    *,
    session: Session,
    folder: str,
    folders: list[FolderRow],
    uid: int,
    msg: m.ReadMessage,
    flags: tuple[str, ...],
    older: int | None,
    newer: int | None,
    images: bool,
    is_trash: bool,
    is_drafts: bool,
) -> str:
    def row(name: str, value: str) -> str:
        return f"<dt>{name}</dt><dd>{esc(value)}</dd>" if value else ""

    headers = (
        '<dl class="headers">'
        + row("From", msg.sender)
        + row("To", msg.to)
        + row("Cc", msg.cc)
        + row("Date", msg.date)
        + "</dl>"
    )
    links = []
    for mode, label, key in (
        ("reply", "Reply", "r"),
        ("replyall", "Reply all", "a"),
        ("forward", "Forward", "f"),
    ):
        href = url("/compose", mode=mode, f=folder, uid=uid)
        links.append(
            f'<a class="button" id="{mode}" data-key="{key}" href="{esc(href)}">{label}</a>'
        )
    flagged = "\\Flagged" in flags
    next_uid = older or newer or ""
    hidden = (
        f'<input type=hidden name=csrf value="{esc(session.csrf)}">'
        f'<input type=hidden name=f value="{esc(folder)}">'
        f'<input type=hidden name=uid value="{uid}">'
        f'<input type=hidden name=back value="msg">'
        f'<input type=hidden name=next value="{next_uid}">'
    )
    toolbar = (
        '<div class="toolbar">'
        + "".join(links)
        + f'<form method=post action="/action" id="msg-form" class="inline">{hidden}'
        + f'<button name=op value="{"unflag" if flagged else "flag"}" type=submit>'
        + ("Unflag" if flagged else "Flag")
        + "</button>"
        + "<button name=op value=unseen type=submit>Mark unread</button>"
        + '<button name=op value=delete type=submit id="delete" class="danger">'
        + ("Delete for good" if is_trash else "Delete")
        + "</button>"
        + move_select(folders, folder)
        + "</form></div>"
    )
    nav = []
    if newer is not None:
        nav.append(
            f'<a id="newer" rel=prev href="{esc(url("/msg", f=folder, uid=newer))}">↑ Newer</a>'
        )
    nav.append(f'<a href="{esc(url("/list", f=folder))}">Back to the list</a>')
    if older is not None:
        nav.append(
            f'<a id="older" rel=next href="{esc(url("/msg", f=folder, uid=older))}">Older ↓</a>'
        )
    content = ""
    if msg.html is not None:
        frame = url("/msg/html", f=folder, uid=uid, images="1" if images else "")
        if msg.has_remote_images and not images:
            load = url("/msg", f=folder, uid=uid, images="1")
            content += (
                '<p class="note">Remote images are blocked to protect your privacy. '
                f'<a href="{esc(load)}">Load images</a></p>'
            )
        content += (
            f'<iframe class="body" src="{esc(frame)}" sandbox="allow-popups '
            'allow-popups-to-escape-sandbox" referrerpolicy="no-referrer" '
            'title="Message"></iframe>'
        )
    elif msg.text is not None:
        content += f'<pre class="body">{esc(msg.text)}</pre>'
    else:
        content += '<p class="muted">This message has no text.</p>'
    if msg.attachments:
        items = "".join(
            f'<li><a href="{esc(url("/msg/part", f=folder, uid=uid, part=a.index))}" download>'
            f'{esc(a.filename)}</a> <span class="muted">{esc(a.content_type)}, '
            f"{esc(human_size(a.size))}</span></li>"
            for a in msg.attachments
        )
        content += f'<section class="attachments"><h2>Attachments</h2><ul>{items}</ul></section>'
    return (
        f'<article class="message"><h1>{esc(msg.subject or "(no subject)")}</h1>'
        + toolbar
        + headers
        + content
        + '<nav class="pager">'
        + " ".join(nav)
        + "</nav></article>"
    )


def _prefill(mode: str, original: m.ReadMessage, me: str) -> dict[str, str]:
    subject = original.subject
    quoted = "\n".join("> " + line for line in (original.text or "").splitlines())
    fields: dict[str, str] = {}
    if mode in ("reply", "replyall"):
        if not subject.lower().startswith("re:"):
            subject = "Re: " + subject
        fields["to"] = original.reply_to or original.sender
        if mode == "replyall":
            mine = me.lower()
            others = [
                email.utils.formataddr(pair)
                for pair in email.utils.getaddresses([original.to, original.cc])
                if pair[1] and pair[1].lower() != mine
            ]
            fields["cc"] = ", ".join(others)
        fields["in_reply_to"] = original.message_id
        fields["references"] = " ".join(x for x in (original.references, original.message_id) if x)
        fields["body"] = f"\n\nOn {original.date}, {original.sender} wrote:\n{quoted}\n"
    else:
        if not subject.lower().startswith("fwd:"):
            subject = "Fwd: " + subject
        fields["body"] = "\n\n(The original message is attached.)\n"
    fields["subject"] = subject
    return {k: " ".join(v.split()) if k != "body" else v for k, v in fields.items()}


def _compose_body(session: Session, fields: dict[str, str], *, error: str) -> str:
    def value(name: str) -> str:
        return esc(fields.get(name, ""))

    hidden = "".join(
        f'<input type=hidden name={k} value="{value(k)}">'
        for k in ("in_reply_to", "references", "fwd_f", "fwd_uid", "reply_f", "reply_uid")
        if fields.get(k)
    )
    problem = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    forward = (
        '<p class="muted">The original message goes along as an attachment.</p>'
        if fields.get("fwd_uid")
        else ""
    )
    return (
        "<h1>Write</h1>"
        + problem
        + '<form method=post action="/compose" enctype="multipart/form-data" class="compose">'
        + f'<input type=hidden name=csrf value="{esc(session.csrf)}">'
        + hidden
        + f'<label>To <input name=to value="{value("to")}" autocomplete=email multiple></label>'
        + f'<label>Cc <input name=cc value="{value("cc")}"></label>'
        + f'<label>Bcc <input name=bcc value="{value("bcc")}"></label>'
        + f'<label>Subject <input name=subject value="{value("subject")}"></label>'
        + f'<textarea name=body rows=16 aria-label="Message">{value("body")}</textarea>'
        + forward
        + '<label class="files">Attachments <input type=file name=attach multiple></label>'
        + '<div class="actions"><button type=submit name=action value=send class="primary">'
        + "Send</button>"
        + "<button type=submit name=action value=draft>Save draft</button></div>"
        + "</form>"
    )


def _load_static() -> dict[str, tuple[str, bytes, str]]:
    """The static files shipped in the package: name -> (type, bytes, ETag)."""
    types = {
        ".css": "text/css; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".svg": "image/svg+xml",
    }
    out: dict[str, tuple[str, bytes, str]] = {}
    folder = importlib.resources.files(__package__ or __name__).joinpath("static")
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in types:
            data = entry.read_bytes()
            etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
            out[entry.name] = (types[suffix], data, etag)
    return out
