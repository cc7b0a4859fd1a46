"""FETCH BODY and BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2) from the part tree.

`body_structure` walks the `Part` tree of `parse_message` and builds the IMAP body
values: type and subtype, Content-Type parameters, Content-ID, Content-Description,
Content-Transfer-Encoding, size in octets, lines for text/* and for message/rfc822 and
message/global (with the envelope and body structure of the encapsulated message), and
with ``extensible`` the extension data: Content-MD5 (RFC 1864), Content-Disposition with
its parameters (RFC 2183), Content-Language (RFC 3282) and Content-Location (RFC 2557),
for multiparts their parameters, disposition, language and location.

The values are as written in the header (type, subtype, parameter names and encoding
keep their case), and the corners follow Dovecot, the project's reference server:

- text/* without a charset parameter gets ``("charset" "us-ascii")`` appended (the
  RFC 2045 5.2 default, made explicit); a missing Content-Type is ``"text" "plain"`` (or
  ``"message" "rfc822"`` in a multipart/digest, RFC 2046 5.1.5) and the encoding
  ``"7bit"``.
- A top-level message (or an encapsulated one) with neither MIME-Version nor
  Content-Type is not MIME: its other Content-* fields are ignored (RFC 2045 4).
- A broken Content-Type keeps what could be read (``"garbage" ""``) and drops the
  parameters; an encoding that is not a single token is ignored. Parameters follow
  RFC 2045 5.1 where Dovecot is laxer (see `_parameters`).
- Lines are the number of line feeds in the body; sizes count a bare LF as CRLF.
- The first Content-Type, -ID, -Description, -Transfer-Encoding, -MD5, -Language and
  -Location count; a later Content-Disposition replaces an earlier one without
  parameters.
- A multipart without parts (no boundary, or none found) shows one empty text/plain part
  so that the value stays well formed (RFC 3501 body-type-mpart needs one).

Deviation (RFC 9051 9, ``media-message``): message/global carries an envelope, body and
lines like message/rfc822; Dovecot 2.3 shows it as a basic part.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..imap.responses import (
    BodyBasic,
    BodyMessage,
    BodyMultipart,
    BodyText,
    BodyType,
    Disposition,
    Envelope,
)
from ._address import nested_comment
from ._envelope import envelope, header_value
from ._model import CONTENT_FIELD, Message, Part, raw_value

__all__ = ["body_structure"]

Params = tuple[tuple[bytes, bytes], ...]

# RFC 2045 token (8-bit octets tolerated as Dovecot does).
_T = rb'[^\x00-\x20()<>@,;:\\"/\[\]?=\x7f]'
_TOKEN = re.compile(_T + rb"+")
_BARE_TOKEN = re.compile(rb"[ \t\r\n]*(%s+)[ \t\r\n]*" % _T)
# Fast paths for values without comments; anything else goes the long way.
_TYPE = re.compile(rb"[ \t\r\n]*(%s+)[ \t\r\n]*/[ \t\r\n]*(%s+)[ \t\r\n]*(?=;|\Z)" % (_T, _T))
_PARAM = re.compile(
    rb"[ \t\r\n]*;[ \t\r\n]*(%s+)[ \t\r\n]*=[ \t\r\n]*"  # ; name =
    rb'(?:"((?:[^"\\]|\\.)*)"|(%s+))[ \t\r\n]*' % (_T, _T),  # value
    re.S,
)
# White space and comments without nesting; a nested comment is left to nested_comment.
_CFWS = re.compile(rb"(?:[ \t\r\n]+|\((?:[^()\\]|\\.)*\))*", re.S)
_QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"', re.S)
_ESCAPE = re.compile(rb"\\(.)", re.S)
# RFC 5322 atom for Content-Language tags.
_ATOM = re.compile(rb'[^\x00-\x20\x7f()<>\[\]:;@\\,."]+')
_DEFAULT_CHARSET = (b"charset", b"us-ascii")
_M = (0x4D, 0x6D)  # "M", "m": MIME-Version among the CONTENT_FIELD names
_RFC2231_NAME = re.compile(rb"([^*]*)\*(?:(0|[1-9][0-9]{0,8})(\*?))?")


def _skip(value: bytes, pos: int) -> int:
    """Skip white space and (nested) comments (RFC 5322 3.2.2)."""
    n = len(value)
    while True:
        pos = _CFWS.match(value, pos).end()  # type: ignore[union-attr]
        if pos >= n or value[pos] != 0x28:
            return pos
        pos = nested_comment(value, pos)
        if pos < 0:  # an unclosed comment runs to the end
            return n


def _token(value: bytes, pos: int) -> tuple[bytes, int]:
    m = _TOKEN.match(value, pos)
    if m is None:
        return b"", pos
    return m.group(), _skip(value, m.end())


def _unquote(content: bytes) -> bytes:
    if b"\\" in content:
        content = _ESCAPE.sub(rb"\1", content)
    if b"\r" in content or b"\n" in content:
        content = content.replace(b"\r", b"").replace(b"\n", b"")
    return content


def _parameters(value: bytes, pos: int) -> Params | None:
    """``;`` name ``=`` value pairs (RFC 2045 5.1), RFC 2231 continuations joined.

    A parameter that does not parse is skipped up to the next ``;``. Three deviations
    from Dovecot, all by RFC 2045 5.1 (``parameter := attribute "=" value``, attribute a
    token, value a token or a quoted-string): after a malformed parameter the next one is
    still read (Dovecot drops it too), and neither ``; =value`` nor ``; name=`` (an empty
    name or unquoted value) is a parameter (Dovecot keeps them with "").
    """
    plain: list[tuple[bytes, bytes]] = []
    extended: list[tuple[bytes, int, bool, bytes]] = []
    n = len(value)
    fast = _PARAM.match
    while pos < n:
        f = fast(value, pos)
        if f is not None:  # the usual ``; name=value`` without comments
            name = f.group(1)
            quoted = f.group(2)
            param = f.group(3) if quoted is None else _unquote(quoted)
            pos = f.end()
        else:
            if value[pos] != 0x3B:
                pos = value.find(b";", pos + 1)
                if pos < 0:
                    break
            pos = _skip(value, pos + 1)
            name, pos = _token(value, pos)
            if not name or pos >= n or value[pos] != 0x3D:
                continue  # not a parameter (RFC 2045 5.1): go on at the next ";"
            pos = _skip(value, pos + 1)
            if pos < n and value[pos] == 0x22:
                q = _QUOTED.match(value, pos)
                if q is None:  # an unclosed quoted string ends the parameters
                    break
                param = _unquote(q.group(1))
                pos = _skip(value, q.end())
            else:
                param, pos = _token(value, pos)
                if not param:
                    continue  # "name=" alone: a value is a token or a quoted-string
        if b"*" not in name:
            plain.append((name, param))
            continue
        m = _RFC2231_NAME.fullmatch(name)
        if m is not None and m.group(2) is not None:
            extended.append((m.group(1), int(m.group(2)), m.group(3) == b"*", param))
        elif m is not None and m.group(1):
            extended.append((m.group(1), 0, True, param))  # name*=charset'lang'value
        else:
            plain.append((name, param))
    if extended:
        plain.extend(_join_rfc2231(extended))
    return tuple(plain) or None


def _join_rfc2231(ext: list[tuple[bytes, int, bool, bytes]]) -> list[tuple[bytes, bytes]]:
    """RFC 2231 3-4: ``name*0*``, ``name*1``... joined into ``name*`` (still encoded).

    A run of sections that does not count 0, 1, 2... is listed section by section.
    """
    out: list[tuple[bytes, bytes]] = []
    ext.sort(key=lambda item: (item[0], item[1]))
    i = 0
    while i < len(ext):
        name = ext[i][0]
        j = i
        while j < len(ext) and ext[j][0] == name:
            j += 1
        group = ext[i:j]
        i = j
        if any(item[1] != k for k, item in enumerate(group)):
            for _name, index, star, val in group:
                out.append((b"%s*%d%s" % (name, index, b"*" if star else b""), val))
            continue
        encoded = any(item[2] for item in group)
        if not encoded:
            out.append((name, b"".join(item[3] for item in group)))
            continue
        # The joined value is charset'language'percent-encoded: plain sections after
        # the first are percent-escaped so that decoding gives them back unchanged.
        joined = b"" if group[0][2] else b"''"
        for _name, _index, star, val in group:
            joined += val if star else val.replace(b"%", b"%25")
        out.append((name + b"*", joined))
    return out


def _content_type(value: bytes) -> tuple[bytes, bytes, Params | None]:
    """type, subtype, parameters; a broken value keeps what could be read, no params."""
    m = _TYPE.match(value)
    if m is not None:  # the usual ``type/subtype`` without comments
        return m.group(1), m.group(2), _parameters(value, m.end())
    n = len(value)
    media_type, pos = _token(value, _skip(value, 0))
    if pos >= n:  # "text" alone: Dovecot keeps the type
        return media_type, b"", None
    if not media_type or value[pos] != 0x2F:
        return b"", b"", None
    subtype, pos = _token(value, _skip(value, pos + 1))
    if not subtype or (pos < n and value[pos] != 0x3B):
        return b"", b"", None
    return media_type, subtype, _parameters(value, pos)


def _disposition(value: bytes) -> Disposition:
    name, pos = _token(value, _skip(value, 0))
    return Disposition(type=name, params=_parameters(value, pos))


def _languages(value: bytes) -> tuple[bytes, ...] | None:
    tags: list[bytes] = []
    pos = _skip(value, 0)
    while True:
        m = _ATOM.match(value, pos)
        if m is None:
            break
        tags.append(m.group())
        pos = _skip(value, m.end())
        if pos >= len(value) or value[pos] != 0x2C:
            break
        pos = _skip(value, pos + 1)
    return tuple(tags) or None


class _Content:
    """The Content-* fields of one part, read once (all None when it is not MIME)."""

    __slots__ = (
        "description",
        "disposition",
        "encoding",
        "id",
        "language",
        "location",
        "md5",
        "media_type",
        "params",
        "subtype",
    )

    def __init__(self, part: Part, top: bool) -> None:
        parsed = part.content_fields
        if part.simple_type and parsed is not None and len(parsed) == 1:
            # The usual part: its one MIME field is the Content-Type the model read.
            self.media_type: bytes | None = part.raw_media_type
            self.subtype = part.raw_subtype
            self.params: Params | None = part.raw_params or None
            self.id: bytes | None = None
            self.description: bytes | None = None
            self.encoding: bytes | None = None
            self.md5: bytes | None = None
            self.location: bytes | None = None
            self.disposition: Disposition | None = None
            self.language: tuple[bytes, ...] | None = None
            return
        media_type: bytes | None = None
        subtype = b""
        params: Params | None = None
        encoding: bytes | None = None
        disposition: Disposition | None = None
        language: tuple[bytes, ...] | None = None
        first: dict[bytes, bytes] = {}  # the first ID, Description, MD5, Location
        mime = not top
        fields: Iterable[re.Match[bytes]] | None = parsed
        if fields is None:  # a Part not made by parse_message
            fields = part.header.scan(CONTENT_FIELD)
        for m in fields:
            name, is_type, is_transfer, value = m.groups()
            if is_type is not None:  # Content-Type
                mime = True
                if media_type is None:
                    if part.simple_type and value is not None:
                        # The model read this very field (its first Content-Type with
                        # a colon) and nothing in it can be read two ways.
                        media_type = part.raw_media_type
                        subtype = part.raw_subtype
                        params = part.raw_params or None
                    else:
                        media_type, subtype, params = _content_type(raw_value(m, 4))
                continue
            if is_transfer is not None:  # Content-Transfer-Encoding
                if encoding is None:
                    raw = raw_value(m, 4)
                    bare = _BARE_TOKEN.fullmatch(raw)
                    if bare is not None:  # the usual value: one token, no comments
                        encoding = bare.group(1)
                    else:
                        token, pos = _token(raw, _skip(raw, 0))
                        if token and pos >= len(raw):
                            encoding = token
                continue
            if name[0] in _M:  # MIME-Version
                mime = True
                continue
            key = name[8:].lower()  # after "content-"
            if key == b"disposition":
                if disposition is None or disposition.params is None:
                    disposition = _disposition(raw_value(m, 4))
            elif key == b"language":
                if language is None:
                    language = _languages(raw_value(m, 4))
            elif key not in first:
                first[key] = header_value(raw_value(m, 4))
        if not mime:  # RFC 2045 4: without MIME-Version the Content-* fields mean nothing
            media_type = params = encoding = disposition = language = None
            subtype = b""
            first = {}
        self.media_type = media_type
        self.subtype = subtype
        self.params = params
        self.encoding = encoding
        self.disposition = disposition
        self.language = language
        self.id = first.get(b"id")
        self.description = first.get(b"description")
        self.md5 = first.get(b"md5")
        self.location = first.get(b"location")


_EMPTY_TEXT = BodyText(
    subtype=b"plain", params=(_DEFAULT_CHARSET,), encoding=b"7bit", size=0, lines=0
)


def _empty_text(extensible: bool) -> BodyText:
    if extensible:
        return BodyText(
            subtype=b"plain",
            params=(_DEFAULT_CHARSET,),
            encoding=b"7bit",
            size=0,
            lines=0,
            ext_fields=4,
        )
    return _EMPTY_TEXT


def _structure(data: bytes, part: Part, top: bool, extensible: bool) -> BodyType:
    c = _Content(part, top)
    if part.media_type == b"multipart":
        if part.children:
            parts = tuple([_structure(data, child, False, extensible) for child in part.children])
        else:
            parts = (_empty_text(extensible),)
        if not extensible:
            return BodyMultipart(parts=parts, subtype=c.subtype or part.subtype)
        return BodyMultipart(
            parts=parts,
            subtype=c.subtype or part.subtype,
            params=c.params,
            disposition=c.disposition,
            language=c.language,
            location=c.location,
            ext_fields=4,
        )
    if c.media_type is None:  # no Content-Type: the defaults
        media_type, subtype, params = part.media_type, part.subtype, None
    else:
        media_type, subtype, params = c.media_type, c.subtype, c.params
    start, end = part.body_start, part.end
    newlines = data.count(b"\n", start, end)
    # RFC 3501 2.3.4: sizes are of the message in RFC 5322 form, where every line ends
    # in CRLF; a bare LF counts as CRLF (as Dovecot counts it).
    size = end - start + newlines - data.count(b"\r\n", start, end)
    encoding = c.encoding or b"7bit"
    lower = media_type.lower()
    if lower == b"text":
        if params is None:
            params = (_DEFAULT_CHARSET,)
        else:
            for name, _ in params:
                if name.lower() == b"charset":
                    break
            else:
                params = (*params, _DEFAULT_CHARSET)
        if not extensible:
            return BodyText(
                subtype=subtype,
                params=params,
                id=c.id,
                description=c.description,
                encoding=encoding,
                size=size,
                lines=newlines,
            )
        return BodyText(
            subtype=subtype,
            params=params,
            id=c.id,
            description=c.description,
            encoding=encoding,
            size=size,
            lines=newlines,
            md5=c.md5,
            disposition=c.disposition,
            language=c.language,
            location=c.location,
            ext_fields=4,
        )
    if lower == b"message" and subtype.lower() in (b"rfc822", b"global"):
        inner = part.message
        if inner is None:  # below the nesting cap: an empty message
            env = Envelope()
            body: BodyType = _empty_text(extensible)
        else:
            env = envelope(inner)
            body = _structure(data, inner, True, extensible)
        if not extensible:
            return BodyMessage(
                subtype=b"rfc822" if subtype.lower() == b"rfc822" else subtype,
                params=params,
                envelope=env,
                body=body,
                lines=newlines,
                id=c.id,
                description=c.description,
                encoding=encoding,
                size=size,
            )
        return BodyMessage(
            subtype=b"rfc822" if subtype.lower() == b"rfc822" else subtype,
            params=params,
            envelope=env,
            body=body,
            lines=newlines,
            id=c.id,
            description=c.description,
            encoding=encoding,
            size=size,
            md5=c.md5,
            disposition=c.disposition,
            language=c.language,
            location=c.location,
            ext_fields=4,
        )
    if not extensible:
        return BodyBasic(
            media_type=media_type,
            subtype=subtype,
            params=params,
            id=c.id,
            description=c.description,
            encoding=encoding,
            size=size,
        )
    return BodyBasic(
        media_type=media_type,
        subtype=subtype,
        params=params,
        id=c.id,
        description=c.description,
        encoding=encoding,
        size=size,
        md5=c.md5,
        disposition=c.disposition,
        language=c.language,
        location=c.location,
        ext_fields=4,
    )


def body_structure(message: Message | Part, *, extensible: bool = True) -> BodyType:
    """BODYSTRUCTURE of a message or part; ``extensible=False`` gives FETCH BODY.

    A `Part` is read as a MIME part of a multipart (its Content-* fields count without
    MIME-Version); pass the `Message` for a whole message.
    """
    if isinstance(message, Message):
        return _structure(message.data, message.root, True, extensible)
    return _structure(message.header.data, message, False, extensible)
