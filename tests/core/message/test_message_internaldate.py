"""INTERNALDATE formatting and parsing (RFC 9051 date-time)."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailproto.message import format_internal_date, parse_internal_date

UTC = datetime.UTC


def tz(hours: int, minutes: int = 0) -> datetime.timezone:
    return datetime.timezone(datetime.timedelta(hours=hours, minutes=minutes))


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (datetime.datetime(2024, 1, 5, 9, 3, 0, tzinfo=tz(1)), b" 5-Jan-2024 09:03:00 +0100"),
        (datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), b"31-Dec-1999 23:59:59 +0000"),
        (
            datetime.datetime(2024, 7, 17, 0, 0, 0, tzinfo=tz(-5, -30)),
            b"17-Jul-2024 00:00:00 -0530",
        ),
        (datetime.datetime(2024, 7, 17, 0, 0, 0), b"17-Jul-2024 00:00:00 +0000"),  # naive: UTC
    ],
)
def test_format(dt: datetime.datetime, text: bytes) -> None:
    assert format_internal_date(dt) == text


@pytest.mark.parametrize(
    "text",
    [b" 5-Jan-2024 09:03:00 +0100", b'" 5-Jan-2024 09:03:00 +0100"', b"5-jan-2024 09:03:00 +0100"],
)
def test_parse(text: bytes) -> None:
    assert parse_internal_date(text) == datetime.datetime(2024, 1, 5, 9, 3, tzinfo=tz(1))


@pytest.mark.parametrize(
    "text", [b"", b"5-Foo-2024 09:03:00 +0100", b"31-Feb-2024 09:03:00 +0100", b"x" * 40]
)
def test_parse_rejects(text: bytes) -> None:
    with pytest.raises(ValueError):
        parse_internal_date(text)


@given(
    st.datetimes(
        min_value=datetime.datetime(1000, 1, 1),
        max_value=datetime.datetime(9999, 12, 31),
        timezones=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
            lambda m: datetime.timezone(datetime.timedelta(minutes=m))
        ),
    )
)
def test_round_trip(dt: datetime.datetime) -> None:
    back = parse_internal_date(format_internal_date(dt))
    assert back == dt.replace(microsecond=0)
    assert back.utcoffset() == dt.utcoffset()
