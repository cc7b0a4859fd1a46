"""HTTP/1.1 (RFC 9112) on h11, as a session flow for our servers, and a small router.

`HTTPServer.session` is a flow like the mail servers' (it yields `Receive`, `Send`,
`Call`), so `AnyIOServer` runs it with its admission limits, TLS and shutdown. Per
connection: keep-alive, a timeout for a request's head and for each piece of its body,
an idle timeout between requests, limits on the head (431/400), the body (413) and
the parts of a form. Bodies are read here, before the handler runs: URL-encoded forms
into memory (small), multipart/form-data streamed into spooled files. A handler's
exception becomes a 500, a malformed request a 400; neither ends the server.

A `Response` body is bytes, or an async iterator of bytes (server-sent events), sent
chunked as it comes.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import h11

from ..._effects import Call, Op, Receive, Send, TransportInfo
from ..._transport import TransportError, TransportTimeout
from .multipart import MultipartError, MultipartParser, TooLarge, Upload

__all__ = ["HTTPError", "HTTPLimits", "HTTPServer", "Request", "Response", "Router"]

log = logging.getLogger("mailproto.webmail")

REASONS = {
    200: "OK",
    204: "No Content",
    303: "See Other",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@attrs.frozen(kw_only=True)
class HTTPLimits:
    """Sizes and timeouts of the HTTP side (seconds, octets)."""

    max_head: int = 16 * 1024
    max_form: int = 1 << 20
    max_upload: int = 25 << 20
    max_field: int = 1 << 20
    max_parts: int = 64
    request_timeout: float = 30.0
    idle_timeout: float = 75.0
    send_timeout: float = 60.0


class HTTPError(Exception):
    """Raised by a handler to answer with ``status`` and a short plain message."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or REASONS.get(status, "Error"))
        self.status = status
        self.message = message or REASONS.get(status, "Error")


@attrs.define(kw_only=True)
class Request:
    """A request with its body already read."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    client_ip: str
    secure: bool
    # Not in the repr: a login form holds a password.
    form: dict[str, list[str]] = attrs.field(factory=dict, repr=False)
    uploads: list[Upload] = attrs.field(factory=list, repr=False)

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def field(self, name: str, default: str = "") -> str:
        values = self.form.get(name)
        return values[0] if values else default

    def cookie(self, name: str) -> str | None:
        for item in self.headers.get("cookie", "").split(";"):
            key, _, value = item.strip().partition("=")
            if key == name:
                return value
        return None


BodyIterator = AsyncIterator[bytes]


@attrs.define(kw_only=True)
class Response:
    """Status, headers (name, value) and a body: bytes or an async iterator of bytes."""

    status: int = 200
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    body: bytes | BodyIterator = b""

    def header(self, name: str, value: str) -> Response:
        self.headers.append((name, value))
        return self


Handler = Callable[[Request], Awaitable[Response]]


class Router:
    """Exact paths to handlers per method; 404 for an unknown path, 405 for a method."""

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Handler]] = {}
        self._prefixes: list[tuple[str, dict[str, Handler]]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        if path.endswith("/*"):
            table = next((t for p, t in self._prefixes if p == path[:-1]), None)
            if table is None:
                table = {}
                self._prefixes.append((path[:-1], table))
        else:
            table = self._routes.setdefault(path, {})
        table[method] = handler
        if method == "GET":
            table.setdefault("HEAD", handler)

    def resolve(self, method: str, path: str) -> Handler:
        table = self._routes.get(path)
        if table is None:
            table = next((t for p, t in self._prefixes if path.startswith(p)), None)
        if table is None:
            raise HTTPError(404)
        handler = table.get(method)
        if handler is None:
            raise HTTPError(405)
        return handler

    def allowed(self, path: str) -> str:
        table = self._routes.get(path) or next(
            (t for p, t in self._prefixes if path.startswith(p)), {}
        )
        return ", ".join(sorted(table))


_BOUNDARY = re.compile(r'boundary="?([0-9A-Za-z\'()+_,./:=? -]{1,70})"?')


class _BodyTooLarge(Exception):
    pass


class HTTPServer:
    """The HTTP/1.1 side: ``session(info)`` is the flow to serve; the app is `handle`."""

    def __init__(
        self,
        handle: Callable[[Request], Awaitable[Response]],
        *,
        limits: HTTPLimits | None = None,
        error_page: Callable[[int, str], Response] | None = None,
    ) -> None:
        self.handle = handle
        self.limits = limits or HTTPLimits()
        self.error_page = error_page or _plain_error

    # -- the connection ------------------------------------------------------------------

    def session(self, info: TransportInfo) -> Op[None]:
        """Serve one connection: requests one after another (keep-alive)."""
        limits = self.limits
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head)
        ip = info.peer[0] if info.peer else "?"
        secure = info.tls is not None
        try:
            while True:
                try:
                    event = yield from self._event(conn, limits.idle_timeout, True)
                except h11.RemoteProtocolError as exc:
                    yield from self._refuse(conn, exc.error_status_hint, str(exc))
                    return
                if not isinstance(event, h11.Request):
                    return  # ConnectionClosed, or the peer half-closed
                # h11 only bounds a head still incomplete; one that came whole in a
                # single read is measured here.
                size = len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers)
                if size > limits.max_head:
                    yield from self._refuse(conn, 431, "request head too large")
                    return
                request = self._request(event, ip, secure)
                if request is None:
                    yield from self._refuse(conn, 400, "bad request target")
                    return
                try:
                    yield from self._read_body(conn, event, request)
                except _BodyTooLarge:
                    yield from self._refuse(conn, 413, "request body too large")
                    return
                except TooLarge as exc:
                    yield from self._refuse(conn, 413, str(exc))
                    return
                except (MultipartError, h11.RemoteProtocolError) as exc:
                    yield from self._refuse(conn, 400, str(exc))
                    return
                try:
                    response = yield Call(self._dispatch, (request,))
                finally:
                    for upload in request.uploads:
                        upload.close()
                keep = yield from self._respond(conn, request, response)
                if not keep or conn.our_state is not h11.DONE:
                    return
                if conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (TransportError, TransportTimeout):
            return  # the serving loop closes the connection

    def _event(self, conn: h11.Connection, idle: float, first: bool) -> Op[Any]:
        """The next h11 event; the idle timeout until a request starts, then the
        request timeout."""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                waiting = idle if first and not conn.trailing_data[0] else None
                timeout = waiting or self.limits.request_timeout
                data = yield Receive(timeout=timeout)
                conn.receive_data(data)
                if data:
                    first = False
                continue
            return event

    def _request(self, event: h11.Request, ip: str, secure: bool) -> Request | None:
        try:
            target = event.target.decode("ascii")
        except UnicodeDecodeError:
            return None
        if not target.startswith("/"):
            return None
        parts = urllib.parse.urlsplit(target)
        try:
            path = urllib.parse.unquote(parts.path, errors="strict")
            query = urllib.parse.parse_qs(
                parts.query, keep_blank_values=True, errors="strict", max_num_fields=100
            )
        except (UnicodeDecodeError, ValueError):
            return None
        headers: dict[str, str] = {}
        for name, value in event.headers:
            key = name.decode("ascii").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        return Request(
            method=event.method.decode("ascii"),
            path=path,
            query=query,
            headers=headers,
            client_ip=ip,
            secure=secure,
        )

    def _read_body(self, conn: h11.Connection, event: h11.Request, request: Request) -> Op[None]:
        limits = self.limits
        ctype = request.headers.get("content-type", "")
        multipart: MultipartParser | None = None
        limit = limits.max_form
        if ctype.lower().startswith("multipart/form-data"):
            match = _BOUNDARY.search(ctype)
            if match is None:
                raise MultipartError("multipart/form-data without a boundary")
            multipart = MultipartParser(
                match.group(1), max_field=limits.max_field, max_parts=limits.max_parts
            )
            limit = limits.max_upload
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _BodyTooLarge
        if conn.client_is_waiting_for_100_continue:
            yield Send(
                conn.send(h11.InformationalResponse(status_code=100, headers=[])),
                timeout=limits.send_timeout,
            )
        body = bytearray()
        received = 0
        try:
            while True:
                part = yield from self._event(conn, 0, False)
                if isinstance(part, h11.EndOfMessage):
                    break
                if not isinstance(part, h11.Data):
                    raise MultipartError("the connection closed inside the body")
                received += len(part.data)
                if received > limit:
                    raise _BodyTooLarge
                if multipart is not None:
                    multipart.feed(part.data)
                else:
                    body += part.data
            if multipart is not None:
                multipart.finish()
                request.form = multipart.fields
                request.uploads = multipart.uploads
            elif ctype.lower().startswith("application/x-www-form-urlencoded"):
                request.form = urllib.parse.parse_qs(
                    body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=200
                )
        except BaseException:
            if multipart is not None:
                multipart.close()
            raise

    async def _dispatch(self, request: Request) -> Response:
        try:
            return await self.handle(request)
        except HTTPError as exc:
            return self.error_page(exc.status, exc.message)
        except Exception:
            log.exception("webmail: the handler of %s %s failed", request.method, request.path)
            return self.error_page(500, "Something went wrong on our side.")

    def _respond(self, conn: h11.Connection, request: Request, response: Response) -> Op[bool]:
        """Send ``response``; False if the connection must close afterwards."""
        timeout = self.limits.send_timeout
        headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
        streaming = not isinstance(response.body, bytes)
        if isinstance(response.body, bytes):
            headers.append((b"Content-Length", str(len(response.body)).encode()))
        reason = REASONS.get(response.status, "").encode()
        head = h11.Response(status_code=response.status, headers=headers, reason=reason)
        yield Send(conn.send(head), timeout=timeout)
        if request.method == "HEAD":
            if streaming:
                yield Call(_aclose, (response.body,))
            yield Send(conn.send(h11.EndOfMessage()), timeout=timeout)
            return True
        if isinstance(response.body, bytes):
            if response.body:
                yield Send(conn.send(h11.Data(data=response.body)), timeout=timeout)
        else:
            body = response.body
            try:
                while True:
                    chunk = yield Call(_next_chunk, (body,))
                    if chunk is None:
                        break
                    yield Send(conn.send(h11.Data(data=chunk)), timeout=timeout)
            except GeneratorExit:
                raise  # the flow is being discarded: no more effects may be asked for
            except BaseException:
                yield Call(_aclose, (body,))
                raise
            yield Call(_aclose, (body,))
        yield Send(conn.send(h11.EndOfMessage()), timeout=timeout)
        return True

    def _refuse(self, conn: h11.Connection, status: int, why: str) -> Op[None]:
        """Answer a request we will not serve, then close (if a response may go)."""
        log.info("webmail: refused a request: %s %s", status, why)
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        response = self.error_page(status, REASONS.get(status, "Error"))
        headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
        body = response.body if isinstance(response.body, bytes) else b""
        headers += [(b"Content-Length", str(len(body)).encode()), (b"Connection", b"close")]
        try:
            data = conn.send(h11.Response(status_code=status, headers=headers))
            data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return
        yield Send(data, timeout=5.0)


async def _next_chunk(body: BodyIterator) -> bytes | None:
    try:
        return await body.__anext__()
    except StopAsyncIteration:
        return None


async def _aclose(body: Any) -> None:
    close = getattr(body, "aclose", None)
    if close is not None:
        await close()


def _plain_error(status: int, message: str) -> Response:
    return Response(
        status=status,
        headers=[("Content-Type", "text/plain; charset=utf-8")],
        body=f"{status} {message}\n".encode(),
    )
