"""Which commands each IMAP state allows, and where tagged completions lead."""

from __future__ import annotations

import pytest

from mailproto.imap import AUTHENTICATED, LOGOUT, NOT_AUTHENTICATED, SELECTED, parse_command
from mailproto.imap import commands as c
from mailproto.imap._state import ERROR, State, allowed_in, next_state

ANY = [c.Capability(tag="a"), c.Noop(tag="a"), c.Logout(tag="a"), c.Id(tag="a")]
NOT_AUTH = [c.StartTLS(tag="a"), c.Authenticate(tag="a", mechanism="PLAIN"),
            c.Login(tag="a", username=b"u", password=b"p")]  # fmt: skip
AUTH = [
    c.Enable(tag="a", capabilities=("CONDSTORE",)),
    c.Select(tag="a", mailbox="INBOX"),
    c.Examine(tag="a", mailbox="INBOX"),
    c.Create(tag="a", mailbox="x"),
    c.Delete(tag="a", mailbox="x"),
    c.Rename(tag="a", mailbox="x", new_name="y"),
    c.Subscribe(tag="a", mailbox="x"),
    c.Unsubscribe(tag="a", mailbox="x"),
    c.List(tag="a", reference="", patterns=("*",)),
    c.Lsub(tag="a", reference="", pattern="*"),
    c.Namespace(tag="a"),
    c.Status(tag="a", mailbox="x", items=("MESSAGES",)),
    c.Append(tag="a", mailbox="x", messages=(c.AppendMessage(message=b"m"),)),
    c.Idle(tag="a"),
    c.GetQuota(tag="a", root=b""),
    c.GetQuotaRoot(tag="a", mailbox="INBOX"),
    c.SetQuota(tag="a", root=b"", limits=(("STORAGE", 10),)),
]
SEL = [
    parse_command(line)
    for line in (
        b"a CHECK",
        b"a CLOSE",
        b"a UNSELECT",
        b"a EXPUNGE",
        b"a SEARCH SEEN",
        b"a FETCH 1 FAST",
        b"a STORE 1 +FLAGS (\\Seen)",
        b"a COPY 1 x",
        b"a MOVE 1 x",
        b"a SORT (DATE) UTF-8 ALL",
        b"a THREAD REFERENCES UTF-8 ALL",
    )
]
STATES: list[State] = [NOT_AUTHENTICATED, AUTHENTICATED, SELECTED, LOGOUT, ERROR]


@pytest.mark.parametrize("state", STATES)
def test_allowed_in(state: State) -> None:
    for cmd in ANY:
        assert allowed_in(cmd, state) is (state not in (LOGOUT, ERROR))
    for cmd in NOT_AUTH:
        assert allowed_in(cmd, state) is (state is NOT_AUTHENTICATED)
    for cmd in AUTH:
        assert allowed_in(cmd, state) is (state in (AUTHENTICATED, SELECTED))
    for cmd in SEL:
        assert allowed_in(cmd, state) is (state is SELECTED)


def test_next_state() -> None:
    login, select, close = NOT_AUTH[2], AUTH[1], SEL[1]
    assert next_state(login, True, NOT_AUTHENTICATED) is AUTHENTICATED
    assert next_state(login, False, NOT_AUTHENTICATED) is NOT_AUTHENTICATED
    assert next_state(NOT_AUTH[1], True, NOT_AUTHENTICATED) is AUTHENTICATED
    assert next_state(login, True, AUTHENTICATED) is AUTHENTICATED
    assert next_state(select, True, AUTHENTICATED) is SELECTED
    assert next_state(AUTH[2], True, SELECTED) is SELECTED
    assert next_state(select, False, SELECTED) is AUTHENTICATED
    assert next_state(select, True, NOT_AUTHENTICATED) is NOT_AUTHENTICATED
    assert next_state(close, True, SELECTED) is AUTHENTICATED
    assert next_state(SEL[2], True, SELECTED) is AUTHENTICATED
    assert next_state(close, False, SELECTED) is SELECTED
    assert next_state(close, True, AUTHENTICATED) is AUTHENTICATED
    for state in STATES:
        assert next_state(c.Logout(tag="a"), True, state) is LOGOUT
        assert next_state(c.Noop(tag="a"), True, state) is state
    assert repr(SELECTED) == "SELECTED"
