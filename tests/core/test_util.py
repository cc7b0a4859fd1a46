"""Tests for mailproto._util: sentinels and the error hierarchy."""

from __future__ import annotations

import traceback

import pytest

import mailproto
from mailproto._util import (
    NEED_DATA,
    PAUSED,
    Event,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    Sentinel,
)


class _Hint(Event):
    __slots__ = ()


def test_public_names_are_the_private_ones() -> None:
    assert mailproto.NEED_DATA is NEED_DATA
    assert mailproto.PAUSED is PAUSED
    assert mailproto.ProtocolError is ProtocolError
    assert mailproto.LocalProtocolError is LocalProtocolError
    assert mailproto.RemoteProtocolError is RemoteProtocolError
    assert mailproto.Event is Event


def test_protocol_error_is_abstract() -> None:
    with pytest.raises(TypeError, match="directly instantiate ProtocolError"):
        ProtocolError("boom")


@pytest.mark.parametrize("cls", [LocalProtocolError, RemoteProtocolError])
def test_subclasses_carry_message_and_hint(cls: type[ProtocolError]) -> None:
    hint = _Hint()
    exc = cls("boom", reply_hint=hint)
    assert isinstance(exc, ProtocolError)
    assert isinstance(exc, Exception)
    assert str(exc) == "boom"
    assert exc.args == ("boom",)
    assert exc.reply_hint is hint
    assert cls("no hint").reply_hint is None


def test_local_and_remote_are_distinct() -> None:
    assert not issubclass(LocalProtocolError, RemoteProtocolError)
    assert not issubclass(RemoteProtocolError, LocalProtocolError)


def _raise_local(hint: Event) -> None:
    raise LocalProtocolError("found here", reply_hint=hint)


def test_reraise_as_remote_keeps_the_object_hint_and_traceback() -> None:
    hint = _Hint()
    caught: list[ProtocolError] = []

    def found_locally_reported_as_remote() -> None:
        try:
            _raise_local(hint)
        except LocalProtocolError as exc:
            caught.append(exc)
            exc._reraise_as_remote_protocol_error()

    with pytest.raises(RemoteProtocolError) as info:
        found_locally_reported_as_remote()
    assert info.value is caught[0]
    assert type(info.value) is RemoteProtocolError
    assert not isinstance(info.value, LocalProtocolError)
    assert info.value.reply_hint is hint
    assert str(info.value) == "found here"
    # The traceback still reaches the place where the problem was found.
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "_raise_local" in frames


@pytest.mark.parametrize("sentinel", [NEED_DATA, PAUSED])
def test_sentinels_are_their_own_type(sentinel: type[Sentinel]) -> None:
    assert type(sentinel) is sentinel
    assert isinstance(sentinel, Sentinel)
    assert isinstance(sentinel, type)
    assert repr(sentinel) == sentinel.__name__
    assert str(sentinel) == sentinel.__name__


def test_sentinels_are_distinct_and_dispatch_by_type() -> None:
    sentinels: list[type[Sentinel]] = [NEED_DATA, PAUSED]
    assert sentinels[0] is not sentinels[1]
    assert sentinels[0] != sentinels[1]
    table: dict[type[Sentinel], str] = {NEED_DATA: "need", PAUSED: "paused"}
    assert table[type(NEED_DATA)] == "need"
    assert table[type(PAUSED)] == "paused"


def test_new_sentinel() -> None:
    class FRESH(Sentinel, metaclass=Sentinel):
        """A sentinel made in a test."""

    assert type(FRESH) is FRESH
    assert repr(FRESH) == "FRESH"
    assert FRESH.__doc__ == "A sentinel made in a test."
    assert FRESH is not NEED_DATA


def test_sentinel_must_derive_from_sentinel_only() -> None:
    with pytest.raises(AssertionError):

        class BAD(metaclass=Sentinel):
            pass


def test_event_base_has_no_instance_dict() -> None:
    assert Event.__slots__ == ()
    assert not hasattr(_Hint(), "__dict__")
