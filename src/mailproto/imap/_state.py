"""IMAP connection states (RFC 9051 section 3, RFC 3501 section 3) and their rules.

`allowed_in` says which commands a state accepts (RFC 9051 section 6 / RFC 3501 section
6); `next_state` says where a command's tagged completion leads. Both connections use
them: the server to refuse a command with BAD, the client to refuse to send it.
"""

from __future__ import annotations

from .._util import Sentinel
from . import _commands as c

__all__ = [
    "AUTHENTICATED",
    "ERROR",
    "LOGOUT",
    "NOT_AUTHENTICATED",
    "SELECTED",
    "State",
    "allowed_in",
    "next_state",
]


class NOT_AUTHENTICATED(Sentinel, metaclass=Sentinel):
    """Before LOGIN / AUTHENTICATE (or after a STARTTLS)."""


class AUTHENTICATED(Sentinel, metaclass=Sentinel):
    """Logged in, no mailbox selected."""


class SELECTED(Sentinel, metaclass=Sentinel):
    """A mailbox is selected (SELECT or EXAMINE)."""


class LOGOUT(Sentinel, metaclass=Sentinel):
    """The connection is ending (LOGOUT, or a BYE)."""


class ERROR(Sentinel, metaclass=Sentinel):
    """A protocol error ended the connection."""


State = type[NOT_AUTHENTICATED] | type[AUTHENTICATED] | type[SELECTED] | type[LOGOUT] | type[ERROR]

_ANY: tuple[type[c.Command], ...] = (c.Capability, c.Noop, c.Logout, c.Id)
_NOT_AUTHENTICATED: tuple[type[c.Command], ...] = (c.StartTLS, c.Authenticate, c.Login)
_AUTHENTICATED: tuple[type[c.Command], ...] = (
    c.Enable,
    c.Select,
    c.Examine,
    c.Create,
    c.Delete,
    c.Rename,
    c.Subscribe,
    c.Unsubscribe,
    c.List,
    c.Lsub,
    c.Namespace,
    c.Status,
    c.Append,
    c.Idle,
    c.Compress,
    c.GetQuota,
    c.GetQuotaRoot,
    c.SetQuota,
)
_SELECTED: tuple[type[c.Command], ...] = (
    c.Check,
    c.Close,
    c.Unselect,
    c.Expunge,
    c.Search,
    c.Fetch,
    c.Store,
    c.Copy,
    c.Move,
    c.Sort,
    c.Thread,
)


def allowed_in(command: c.Command, state: State) -> bool:
    """Whether ``command`` may be issued in ``state``.

    Commands of any state are allowed in NOT_AUTHENTICATED, AUTHENTICATED and SELECTED;
    nothing is allowed in LOGOUT or ERROR.
    """
    if state is LOGOUT or state is ERROR:
        return False
    if isinstance(command, _ANY):
        return True
    if state is NOT_AUTHENTICATED:
        return isinstance(command, _NOT_AUTHENTICATED)
    if isinstance(command, _AUTHENTICATED):
        return True
    return state is SELECTED and isinstance(command, _SELECTED)


def next_state(command: c.Command, tagged_ok: bool, state: State) -> State:
    """The state after ``command`` completed (``tagged_ok``: its tagged status was OK).

    LOGIN / AUTHENTICATE OK lead to AUTHENTICATED; SELECT / EXAMINE OK to SELECTED and
    NO or BAD to AUTHENTICATED (RFC 9051 6.3.2: a failed SELECT closes the current
    mailbox); CLOSE / UNSELECT OK to AUTHENTICATED; LOGOUT to LOGOUT whatever its status.
    """
    if isinstance(command, c.Logout):
        return LOGOUT
    if isinstance(command, (c.Login, c.Authenticate)):
        return AUTHENTICATED if tagged_ok and state is NOT_AUTHENTICATED else state
    if isinstance(command, (c.Select, c.Examine)):
        if state is AUTHENTICATED or state is SELECTED:
            return SELECTED if tagged_ok else AUTHENTICATED
        return state
    if isinstance(command, (c.Close, c.Unselect)):
        return AUTHENTICATED if tagged_ok and state is SELECTED else state
    return state
