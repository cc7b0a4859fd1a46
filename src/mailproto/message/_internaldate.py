"""INTERNALDATE: the IMAP date-time of a message (RFC 9051 2.3.3, 9 ``date-time``).

The form is ``dd-Mon-yyyy hh:mm:ss +zzzz`` with the day padded by a space
(``date-day-fixed``) and an English month name; no quotes here, the encoder adds them.
"""

from __future__ import annotations

import datetime

from ..imap._grammar import ParseError, Parser

__all__ = ["format_internal_date", "parse_internal_date"]

_MONTHS = b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def format_internal_date(dt: datetime.datetime) -> bytes:
    """``b" 5-Jan-2024 09:03:00 +0100"``; a naive datetime is taken as UTC.

    Seconds of a zone offset are dropped (the wire has only hours and minutes).
    """
    offset = dt.utcoffset()
    if offset is None:
        offset = datetime.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = b"-" if minutes < 0 else b"+"
    minutes = abs(minutes)
    return b"%2d-%s-%04d %02d:%02d:%02d %s%02d%02d" % (
        dt.day,
        _MONTHS[dt.month - 1],
        dt.year,
        dt.hour,
        dt.minute,
        dt.second,
        sign,
        minutes // 60,
        minutes % 60,
    )


def parse_internal_date(value: bytes) -> datetime.datetime:
    """Read a date-time, with or without its double quotes, into an aware datetime.

    Raises ValueError when ``value`` is not a date-time.
    """
    text = value.strip(b"\r\n")
    if not text.startswith(b'"'):
        text = b'"' + text + b'"'
    if text[2:3] == b"-":  # a one-digit day without its padding space
        text = b'" ' + text[1:]
    parser = Parser(text)
    try:
        result = parser.date_time()
        parser.end()
    except ParseError as exc:
        raise ValueError(str(exc)) from None
    return result
