"""decode_transfer: base64, quoted-printable and the identity encodings (RFC 2045 6)."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailproto.message import decode_transfer


@pytest.mark.parametrize("encoding", [b"7bit", b"8bit", b"binary", b"BINARY", b" 7Bit ", b""])
def test_identity(encoding: bytes) -> None:
    assert decode_transfer(b"a\r\n\xff", encoding) == b"a\r\n\xff"


@pytest.mark.parametrize("encoding", [b"x-uuencode", b"base65", b"quoted"])
def test_unknown(encoding: bytes) -> None:
    assert decode_transfer(b"abc", encoding) is None


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        (b"QUJD\r\n", b"ABC"),
        (b"QUJ\r\nD\r\n", b"ABC"),
        (b"QUI=\r\n", b"AB"),
        (b"QUI", b"AB"),  # padding supplied
        (b"QQ", b"A"),
        (b"QUJDR", b"ABC"),  # a lone sextet is dropped
        (b"QU*JD!", b"ABC"),  # characters outside the alphabet are skipped
        (b"QUI=QUJD", b"AB"),  # stops at the padding
        (b"", b""),
    ],
)
def test_base64(encoded: bytes, decoded: bytes) -> None:
    assert decode_transfer(encoded, b"Base64") == decoded


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        (b"a=3Db", b"a=b"),
        (b"soft=\r\nbreak", b"softbreak"),
        (b"soft=\nbreak", b"softbreak"),
        (b"trailing  \r\nspace\t\r\n", b"trailing\r\nspace\r\n"),
        (b"caf=C3=A9", "caf\u00e9".encode()),
        (b"end  ", b"end"),
    ],
)
def test_quoted_printable(encoded: bytes, decoded: bytes) -> None:
    assert decode_transfer(encoded, b"quoted-printable") == decoded


@given(st.binary(max_size=300))
def test_base64_round_trip(data: bytes) -> None:
    assert decode_transfer(base64.encodebytes(data), b"base64") == data


@given(st.binary(max_size=300))
def test_quoted_printable_round_trip(data: bytes) -> None:
    encoded = binascii.b2a_qp(data.replace(b"\r", b""), istext=False)
    assert decode_transfer(encoded, b"quoted-printable") == data.replace(b"\r", b"")


@given(st.binary(max_size=300), st.sampled_from([b"base64", b"quoted-printable", b"7bit"]))
def test_never_raises(data: bytes, encoding: bytes) -> None:
    assert decode_transfer(data, encoding) is not None
