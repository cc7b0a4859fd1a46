"""The webmail's HTML: small functions that return escaped markup, no template engine.

Every value that comes from a message, the IMAP server or the request passes through
`esc` (or `attr`) before it reaches a page; nothing here builds markup from unescaped
input. Pages carry no inline script or style (the CSP forbids both): behaviour is in
``static/app.js``, looks in ``static/style.css``.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Iterable, Sequence

import attrs

__all__ = ["FolderRow", "ListRow", "esc", "layout", "login_page", "url"]


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def url(path: str, **params: object) -> str:
    """A same-site URL with a query string (values encoded), for href and action."""
    query = urllib.parse.urlencode({k: str(v) for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


@attrs.frozen(kw_only=True)
class FolderRow:
    name: str
    label: str
    unseen: int
    special: str | None


@attrs.frozen(kw_only=True)
class ListRow:
    uid: int
    sender: str
    subject: str
    date: str
    size: int
    seen: bool
    flagged: bool
    answered: bool
    attachment: bool


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def _head(title: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        '<link rel=stylesheet href="/static/style.css">'
        '<script src="/static/app.js" defer></script></head>'
    )


def login_page(error: str = "", user: str = "", note: str = "") -> str:
    message = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    info = f'<p class="note">{esc(note)}</p>' if note else ""
    return (
        _head("Sign in · Webmail")
        + '<body class="login"><main class="login-box"><h1>Webmail</h1>'
        + info
        + message
        + '<form method=post action="/login">'
        + '<label>User <input name=user autocomplete=username required autofocus value="'
        + esc(user)
        + '"></label>'
        + "<label>Password <input name=password type=password "
        + "autocomplete=current-password required></label>"
        + "<button type=submit>Sign in</button></form></main></body></html>"
    )


def folder_nav(folders: Sequence[FolderRow], current: str) -> str:
    items = []
    for f in folders:
        cls = ' class="current"' if f.name == current else ""
        badge = f'<span class="count">{f.unseen}</span>' if f.unseen else ""
        items.append(
            f'<li><a{cls} href="{esc(url("/list", f=f.name))}" data-folder="{esc(f.name)}">'
            f"{esc(f.label)}{badge}</a></li>"
        )
    return '<nav class="folders" aria-label="Folders"><ul>' + "".join(items) + "</ul></nav>"


def layout(
    *,
    title: str,
    user: str,
    csrf: str,
    folders: Sequence[FolderRow],
    current: str,
    body: str,
    note: str = "",
    page_class: str = "",
) -> str:
    notice = f'<p class="note" role="status">{esc(note)}</p>' if note else ""
    return (
        _head(f"{title} · Webmail")
        + f'<body class="{esc(page_class)}" data-folder="{esc(current)}">'
        + '<header class="top"><a class="brand" href="/">Webmail</a>'
        + '<a class="button primary" href="/compose" accesskey=c>Write</a>'
        + '<form class="search" method=get action="/list" role="search">'
        + f'<input type=hidden name=f value="{esc(current)}">'
        + '<input type=search name=q placeholder="Search" aria-label="Search"></form>'
        + f'<span class="user">{esc(user)}</span>'
        + '<form method=post action="/logout" class="inline">'
        + f'<input type=hidden name=csrf value="{esc(csrf)}">'
        + '<button type=submit class="link">Sign out</button></form></header>'
        + '<div class="shell">'
        + folder_nav(folders, current)
        + '<main class="content">'
        + '<p id="newmail" class="note" hidden><a href="'
        + esc(url("/list", f=current))
        + '">New mail has arrived: show it</a></p>'
        + notice
        + body
        + "</main></div></body></html>"
    )


def move_select(folders: Iterable[FolderRow], current: str) -> str:
    options = "".join(
        f'<option value="{esc(f.name)}">{esc(f.label)}</option>'
        for f in folders
        if f.name != current
    )
    return (
        '<select name=to aria-label="Move to">'
        f'<option value="">Move to…</option>{options}</select>'
        "<button name=op value=move type=submit>Move</button>"
    )
