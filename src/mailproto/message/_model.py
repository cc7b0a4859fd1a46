"""The message model: one parse of RFC 5322 / MIME bytes into offsets and a part tree.

`parse_message` reads a message once and returns a `Message` whose `Part` tree answers
every later question (ENVELOPE, BODYSTRUCTURE, sections, SEARCH) by slicing the original
bytes: nothing is decoded, rewritten or copied here.

What it implements:

- RFC 5322 2.1-2.2: the header block ends at the first empty line; header fields are
  ``name ":" value`` with folding (a line starting with SP or HTAB continues the field).
  A header line without a colon does not end the header block (Dovecot does the same);
  it is kept as a field whose name is the whole line and whose value is empty. Lines
  may end in CRLF or in a bare LF (messages stored with LF); offsets stay exact.
- RFC 2045 5.1 / RFC 2231: Content-Type (the first such field) with comments, quoted
  strings and parameters; RFC 2231 continuations are joined the way Dovecot joins
  them (``name*0*``, ``name*1*`` become ``name*`` with the value still
  percent-encoded).
- RFC 2046 5.1.1: delimiter lines start with ``--boundary`` of any open multipart
  (Dovecot's prefix match: the longest boundary wins, the innermost among equals); the
  line end before a delimiter belongs to the delimiter; ``--boundary--`` closes, with
  preamble and epilogue outside every part; an outer boundary ends every inner part; a
  missing close delimiter ends the parts where the enclosing body ends. RFC 2046 5.1.5:
  multipart/digest parts default to message/rfc822. RFC 2045 5.2: else text/plain.
- RFC 2046 5.2.1 / RFC 6532 3.7: message/rfc822 and message/global bodies are parsed
  as messages (Dovecot 2.3 leaves message/global opaque; RFC 9051 7.5.2 wants it
  structured).
- RFC 3501 / RFC 9051 6.4.5: IMAP part numbering (`Message.part`).

Section bytes computed from these offsets equal Dovecot 2.3.19's on the CPython email
corpus and on random MIME-shaped messages (see docs/message.md for the corners).

Header fields are looked up by regexes that match at field starts (`HeaderBlock.scan`),
one C-level scan per header block; a plain Content-Type is read by one regex.
Time is linear in the size of the message for a bounded depth: each boundary is found
with ``bytes.find`` whose scans never overlap, header blocks with a compiled regex that
stops at the next delimiter; below ``max_depth`` a multipart or message part is opaque
and at most ``max_parts`` parts are made.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["HeaderBlock", "Message", "Part", "parse_message"]

# The blank line that ends a header block: LF, optional CR, LF (the first LF ends the
# previous line; CRLF CRLF and LF LF both match).
_BLANK_LINE = re.compile(rb"\n\r?\n")
# One header field: a first line and its continuation lines (starting with SP or HTAB),
# with the line end of the last line when there is one.
_FIELD = re.compile(rb"([^:\n]*)(:?)[^\n]*(?:\n[ \t][^\n]*)*\n?")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_WSP = b" \t"
_CFWS_WS = re.compile(rb"[ \t\r\n]+")
_COMMENT_TEXT = re.compile(rb"(?:[^()\\]|\\.)*", re.DOTALL)
# RFC 2045 token: anything but SP, CTLs and tspecials (8-bit octets are tolerated).
_TOKEN = re.compile(rb'[^\x00-\x20()<>@,;:\\"/\[\]?=\x7f]+')
_QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)("?)', re.DOTALL)
_QUOTED_PAIR = re.compile(rb"\\(.)", re.DOTALL)
_DIGITS = re.compile(rb"[0-9]*")
# After a field name in a `HeaderBlock.scan` pattern: the colon and the raw value up to
# the line end ending the field (group 1 here), or no colon at all: a line holding just
# the name is a field with an empty value (see HeaderBlock).
FIELD_VALUE = rb"[ \t]*(?::([^\n]*(?:\n[ \t][^\n]*)*)|(?=\r?\n(?![ \t])|\Z))"
# The MIME fields of a part, found where a field starts (after the LF ending the line
# before, `HeaderBlock.scan`): the name (group 1; group 2 set for Content-Type, group 3
# for Content-Transfer-Encoding) and the raw value (group 4, None without a colon, see
# `raw_value`). The parser reads the first two; BODYSTRUCTURE the rest.
CONTENT_FIELD = re.compile(
    rb"\n(mime-version|content-(?:(type)|(transfer-encoding)|id|description|md5|disposition"
    rb"|language|location))" + FIELD_VALUE,
    re.I,
)
# A Content-Type without comments, quoted-pairs, RFC 2231 names or line ends: the
# parameter loop below gives the same answer for it, and so does _bodystructure's.
_TCHAR = rb'[^\x00-\x20()<>@,;:\\"/\[\]?=\x7f]'
_NCHAR = rb'[^\x00-\x20()<>@,;:\\"/\[\]?=\x7f*]'
_SIMPLE_PARAM = rb'[ \t]*;[ \t]*(%s+)[ \t]*=[ \t]*(?:(%s+)|"([^"\\\r\n]*)")' % (_NCHAR, _TCHAR)
_SIMPLE_TYPE = re.compile(
    rb"(%s+)[ \t]*/[ \t]*(%s+)((?:%s)*)[ \t]*(?:;[ \t]*)?" % (_TCHAR, _TCHAR, _SIMPLE_PARAM)
)
_SIMPLE_PARAMS = re.compile(_SIMPLE_PARAM)


class HeaderBlock:
    """One header block: ``data[start:end]``, including the blank line that ends it.

    Fields are found lazily, once, on the first question.
    """

    __slots__ = ("_fields", "_index", "_spans", "data", "end", "start")

    def __init__(self, data: bytes, start: int, end: int) -> None:
        self.data = data
        self.start = start
        self.end = end
        self._spans: list[tuple[int, int, int]] | None = None
        self._fields: list[tuple[bytes, bytes]] | None = None
        self._index: dict[bytes, list[int]] | None = None

    def __repr__(self) -> str:
        return f"HeaderBlock(start={self.start}, end={self.end})"

    def clip(self, end: int) -> None:
        """Shorten the block to ``data[start:end]`` (the parser's last word on it)."""
        self.end = end
        self._spans = self._fields = self._index = None

    def spans(self) -> list[tuple[int, int, int]]:
        """``(field start, colon or -1, field end including its line end)`` per field."""
        if self._spans is None:
            data = self.data
            spans: list[tuple[int, int, int]] = []
            append = spans.append
            # The pattern matches empty at the end, so the loop always ends at a break.
            for m in _FIELD.finditer(data, self.start, self.end):  # pragma: no branch
                s, e = m.span()
                if e - s <= 2 and data[s:e] in (b"\r\n", b"\n", b"\r", b""):
                    break  # the blank line that ends the block, or the end
                name_end = m.end(1)
                append((s, name_end if m.end(2) > name_end else -1, e))
            self._spans = spans
        return self._spans

    def fields(self) -> list[tuple[bytes, bytes]]:
        """``(name, raw value)`` per field, in order, as sent (folding kept)."""
        if self._fields is None:
            data = self.data
            out: list[tuple[bytes, bytes]] = []
            for s, colon, e in self.spans():
                e = _strip_line_end(data, s, e)
                if colon < 0:
                    out.append((data[s:e], b""))
                else:
                    out.append((data[s:colon], data[colon + 1 : e]))
            self._fields = out
        return self._fields

    def get_all(self, name: bytes) -> list[bytes]:
        """Unfolded, stripped values of every field called ``name`` (any case)."""
        if self._index is None:
            data = self.data
            index: dict[bytes, list[int]] = {}
            for i, (s, colon, _e) in enumerate(self.spans()):
                if colon >= 0:
                    index.setdefault(data[s:colon].rstrip(_WSP).lower(), []).append(i)
            self._index = index
        hits = self._index.get(name.lower())
        if not hits:
            return []
        data = self.data
        spans = self._spans
        assert spans is not None
        out = []
        for i in hits:
            s, colon, e = spans[i]
            value = data[colon + 1 : _strip_line_end(data, s, e)]
            if b"\n" in value:
                value = _FOLD.sub(b"", value)
            out.append(value.strip(_WSP))
        return out

    def get(self, name: bytes) -> bytes | None:
        """The first value of ``name``, unfolded and stripped, or None."""
        values = self.get_all(name)
        return values[0] if values else None

    def scan(self, pattern: re.Pattern[bytes]) -> Iterator[re.Match[bytes]]:
        """Matches of ``pattern``, which starts with LF, where fields start, in order.

        A field starts after the LF ending the line before it, so a pattern like
        ``\\nsubject[ \\t]*:`` finds the fields called Subject in one C-level scan, not
        field by field; `raw_value` gives the value as `fields` does.
        """
        start = self.start
        data = self.data
        if start and data[start - 1] == 0x0A:
            return pattern.finditer(data, start - 1, self.end)
        return pattern.finditer(b"\n" + data[start : self.end])


def raw_value(m: re.Match[bytes], group: int) -> bytes:
    """The value in ``group`` of a `HeaderBlock.scan` match, as `HeaderBlock.fields` has it.

    The group is the one of `FIELD_VALUE`: the CR of a CRLF ending the field is dropped,
    as `fields` drops the line end, and a field without a colon has an empty value.
    """
    value = m.group(group)
    if value is None:
        return b""
    if value[-1:] == b"\r" and m.end() < m.endpos:
        return value[:-1]
    return value


def _unfold(m: re.Match[bytes], value: bytes) -> bytes:
    """The ``value`` group of ``m``, unfolded and stripped as `HeaderBlock.get_all` has it."""
    if value[-1:] == b"\r" and m.end() < m.endpos:
        value = value[:-1]
    if b"\n" in value:
        value = _FOLD.sub(b"", value)
    return value.strip(_WSP)


def _strip_line_end(data: bytes, start: int, end: int) -> int:
    if end > start and data[end - 1] == 0x0A:
        end -= 1
        if end > start and data[end - 1] == 0x0D:
            end -= 1
    return end


class Part:
    """One MIME entity (or the whole message): its header, body offsets and children.

    ``number`` is the IMAP part number (``()`` for the top-level message; an
    encapsulated message carries the number of the message/rfc822 part holding it).
    ``media_type``, ``subtype``, ``params`` (names) and ``encoding`` are lower-case
    with defaults applied; the ``raw_*`` twins keep them as sent, as Dovecot shows
    them in BODYSTRUCTURE (``("", "")`` for a Content-Type it cannot read).
    ``simple_type`` tells that the Content-Type had no comments, quoting or RFC 2231
    parameters, so that any reading of it gives the ``raw_*`` values.
    """

    __slots__ = (
        "body_start",
        "children",
        "content_fields",
        "encoding",
        "end",
        "header",
        "lines",
        "media_type",
        "message",
        "number",
        "params",
        "raw_encoding",
        "raw_media_type",
        "raw_params",
        "raw_subtype",
        "simple_type",
        "subtype",
    )

    def __init__(
        self,
        number: tuple[int, ...],
        header: HeaderBlock,
        body_start: int,
        end: int,
        media_type: bytes,
        subtype: bytes,
        params: tuple[tuple[bytes, bytes], ...],
        encoding: bytes,
        children: tuple[Part, ...] = (),
        message: Part | None = None,
        lines: int = 0,
        raw: tuple[bytes, bytes, tuple[tuple[bytes, bytes], ...], bytes] | None = None,
        simple_type: bool = False,
        content_fields: list[re.Match[bytes]] | None = None,
    ) -> None:
        self.number = number
        self.header = header
        self.body_start = body_start
        self.end = end
        self.media_type = media_type
        self.subtype = subtype
        self.params = params
        self.encoding = encoding
        self.children = children
        self.message = message
        self.lines = lines
        if raw is None:
            raw = (media_type, subtype, params, encoding)
        self.raw_media_type, self.raw_subtype, self.raw_params, self.raw_encoding = raw
        # The first Content-Type field was plain ``type/subtype; name=value...`` (see
        # _SIMPLE_TYPE): BODYSTRUCTURE may take the raw_* values as they are.
        self.simple_type = simple_type
        # The parser's CONTENT_FIELD matches in this header (None: not read yet).
        self.content_fields = content_fields

    def __repr__(self) -> str:
        return (
            f"Part(number={self.number!r}, type={self.media_type!r}/{self.subtype!r}, "
            f"header={self.header.start}:{self.header.end}, "
            f"body={self.body_start}:{self.end}, children={len(self.children)})"
        )

    @property
    def is_multipart(self) -> bool:
        return self.media_type == b"multipart"

    def param(self, name: bytes) -> bytes | None:
        """The first Content-Type parameter called ``name`` (lower-case), or None."""
        return _param(self.params, name)


class Message:
    """A parsed message: the original bytes and the root `Part`."""

    __slots__ = ("data", "root", "size")

    def __init__(self, data: bytes, root: Part) -> None:
        self.data = data
        self.root = root
        self.size = len(data)

    def __repr__(self) -> str:
        return f"Message(size={self.size}, root={self.root!r})"

    def part(self, number: tuple[int, ...]) -> Part | None:
        """The part with IMAP number ``number`` (RFC 9051 6.4.5), or None.

        Part 1 of a message that is not multipart is the message itself (its body);
        after a message/rfc822 part N, ``N.k`` indexes the encapsulated message. Like
        Dovecot, a part that is not multipart also answers to one more ``.1`` (so
        ``2.1`` is part 2 when part 2 is text/plain), but not to two.
        """
        cur = self.root
        used = False  # cur already answered to its ".1"
        last = len(number) - 1
        for i, n in enumerate(number):
            if cur.is_multipart:
                if not 1 <= n <= len(cur.children):
                    return None
                cur = cur.children[n - 1]
                used = False
            elif n != 1 or used:
                return None
            else:
                used = True
            if cur.message is not None and i < last:
                cur = cur.message
                used = False
        return cur


# The parser recurses two frames per nesting level: keep far from the recursion limit.
_DEPTH_LIMIT = 200


def parse_message(data: bytes, *, max_depth: int = 64, max_parts: int = 10_000) -> Message:
    """Parse ``data`` once into a `Message`; never raises, whatever the bytes.

    ``max_depth`` caps the nesting of multipart and message parts (at most 200): a part
    that deep is kept whole, as a single part without children. ``max_parts`` caps the
    number of parts, the top-level message included: the last one runs to the end of
    the data, with no delimiter recognised any more (Dovecot 2.3 does the same at its
    default of 10,000 parts).
    """
    parser = _Parser(data, max(0, min(max_depth, _DEPTH_LIMIT)), max(1, max_parts))
    root = parser.part(0, (), [], False, 0)[0]
    return Message(data, root)


class _Parser:
    __slots__ = ("data", "found", "max_depth", "parts_left", "size")

    def __init__(self, data: bytes, max_depth: int, max_parts: int) -> None:
        self.data = data
        self.size = len(data)
        self.max_depth = max_depth
        self.parts_left = max_parts
        self.found: dict[bytes, tuple[int, int]] = {}

    def next_boundary(self, pos: int, bounds: list[bytes]) -> tuple[int, int]:
        """The next delimiter line at or after line start ``pos`` matching ``bounds``.

        Returns ``(line start, index in bounds)``, or ``(size, -1)``. ``bounds`` holds
        ``b"\\n--" + boundary``, innermost last. A line matches a boundary that is a
        prefix of it; when several match, the longest wins, the innermost among equals,
        and a boundary matching the whole line (or the line without a final ``--``)
        stops the search: Dovecot's rules.
        """
        data = self.data
        size = self.size
        at_line = pos > 0 and data[pos - 1] == 0x0A
        if len(bounds) <= 1:  # the usual case: no choice to make
            if not bounds:
                return size, -1
            needle = bounds[0]
            if at_line and data.startswith(needle, pos - 1):
                return pos, 0
            nl = self.find(needle, pos)
            return (size, -1) if nl < 0 else (nl + 1, 0)
        best = size
        which: list[int] = []
        for i, needle in enumerate(bounds):
            if at_line and data.startswith(needle, pos - 1):
                line = pos
            else:
                nl = self.find(needle, pos)
                line = size if nl < 0 else nl + 1
            if line < best:
                best, which = line, [i]
            elif line == best < size:
                which.append(i)
        if not which:
            return size, -1
        if len(which) == 1:
            return best, which[0]
        eol = data.find(b"\n", best)
        eol = size if eol < 0 else eol
        if eol > best and data[eol - 1] == 0x0D:
            eol -= 1
        length = eol - best  # of the line without its line end
        chosen, chosen_len = -1, -1
        for i in reversed(which):
            n = len(bounds[i]) - 1
            if n > chosen_len:
                chosen, chosen_len = i, n
                if n == length or (n == length - 2 and data.startswith(b"--", best + n)):
                    break
        return best, chosen

    def find(self, needle: bytes, pos: int) -> int:
        """``data.find(needle, pos)``, remembering the answer for later, larger ``pos``.

        Parts only move forward, so each boundary's scans never overlap: linear in the
        size of the data per boundary.
        """
        cached = self.found.get(needle)
        if cached is not None:
            start, found = cached
            if start <= pos and (found < 0 or found >= pos):
                return found
        found = self.data.find(needle, pos)
        self.found[needle] = (pos, found)
        return found

    def part_end(self, start: int, line: int) -> int:
        """Where a part that started at ``start`` ends before the delimiter at ``line``."""
        if line >= self.size or line <= start:
            return min(line, self.size)
        end = line - 1  # the LF before the delimiter
        if end > start and self.data[end - 1] == 0x0D:
            end -= 1
        return max(end, start)

    def part(
        self,
        start: int,
        number: tuple[int, ...],
        bounds: list[bytes],
        in_digest: bool,
        depth: int,
    ) -> tuple[Part, int, int, int]:
        """Parse the entity starting at ``start``.

        Returns the part, the line start of the delimiter that ended it (or the size of
        the data), the index of the boundary in ``bounds`` (-1 at the end of data) and
        where an enclosing part that ends with this one ends (see below).
        """
        data = self.data
        self.parts_left -= 1
        last = self.parts_left <= 0
        if last:  # the last part allowed: it takes the rest of the data
            bounds = []
        stop, which = self.next_boundary(start, bounds)
        # The header block ends at the first empty line before the next delimiter, or
        # without one where the part ends.
        cut = False  # a delimiter ends the header block: the body is empty
        if data.startswith(b"\r\n", start) and stop - start >= 2:
            header_end = start + 2
        elif data.startswith(b"\n", start) and stop > start:
            header_end = start + 1
        else:
            m = _BLANK_LINE.search(data, start, stop)
            if m is None:
                header_end = stop
                cut = stop < self.size
            else:
                header_end = m.end()
        header = HeaderBlock(data, start, header_end)
        body_start = header_end

        # The first Content-Type and Content-Transfer-Encoding, as header.get gives them.
        content_type = transfer = None
        if start and data[start - 1] == 0x0A:
            fields = list(CONTENT_FIELD.finditer(data, start - 1, header_end))
        else:
            fields = list(header.scan(CONTENT_FIELD))
        for m in fields:
            _name, is_type, is_transfer, value = m.groups()
            if value is None:  # no colon: header.get does not see it
                continue
            if is_type is not None:
                if content_type is None:
                    content_type = _unfold(m, value)
            elif is_transfer is not None and transfer is None:
                transfer = _unfold(m, value)
        simple = False
        raw_params: tuple[tuple[bytes, bytes], ...]
        params: tuple[tuple[bytes, bytes], ...]
        if content_type is None:
            if in_digest:
                raw_type = media_type = b"message"
                raw_subtype = subtype = b"rfc822"
            else:
                raw_type = media_type = b"text"
                raw_subtype = subtype = b"plain"
            raw_params = params = ()
        else:
            t = _SIMPLE_TYPE.fullmatch(content_type)
            if t is not None:
                simple = True
                raw_type, raw_subtype, rest, name, token, quoted = t.groups()
                media_type = raw_type.lower()
                subtype = raw_subtype.lower()
                if rest.count(b";") == 1:  # one parameter: the groups of the last one
                    value = quoted if token is None else token
                    raw_params = ((name, value),)
                    params = ((name.lower(), value),)
                elif rest:
                    raw_list: list[tuple[bytes, bytes]] = []
                    low_list: list[tuple[bytes, bytes]] = []
                    for n, v, q in _SIMPLE_PARAMS.findall(rest):
                        v = v or q
                        raw_list.append((n, v))
                        low_list.append((n.lower(), v))
                    raw_params = tuple(raw_list)
                    params = tuple(low_list)
                else:
                    raw_params = params = ()
            else:
                raw_type, raw_subtype, raw_params, media_type, subtype, params = _content_type(
                    content_type, in_digest
                )
        if transfer is None:
            raw_encoding = encoding = b"7bit"
        else:
            raw_encoding = _encoding(transfer)
            encoding = raw_encoding.lower()

        children: tuple[Part, ...] = ()
        message: Part | None = None
        # The line end before a delimiter belongs to the delimiter (RFC 2046 5.1.1),
        # not to this part, whose bytes begin at ``floor``: after a close delimiter,
        # the epilogue keeps the line end of the close delimiter line (Dovecot).
        floor = start
        outer_end = -1
        is_message = media_type == b"message" and subtype in (b"rfc822", b"global")
        if depth < self.max_depth and not cut and not last:
            if media_type == b"multipart":
                boundary = _param(params, b"boundary")
                if boundary:
                    children, stop, which, epilogue, outer_end = self.multipart(
                        body_start, number, bounds, b"\n--" + boundary, subtype == b"digest", depth
                    )
                    floor = max(floor, epilogue)
            elif is_message:
                message, stop, which, outer_end = self.part(
                    body_start, number, bounds, False, depth + 1
                )
                if message.header.start < stop:
                    floor = message.end
                else:  # the delimiter follows the empty line: nothing encapsulated
                    outer_end = -1
        end = self.part_end(floor, stop)
        if end < body_start:
            # The header block reaches the delimiter: its last line end is the
            # delimiter's. Dovecot still counts that line end in the enclosing parts.
            body_start = end
            header.clip(end)
            outer_end = stop
            if message is not None or (cut and depth < self.max_depth and is_message):
                # An empty encapsulated message where the body now starts.
                message = Part(
                    number, HeaderBlock(data, end, end), end, end, b"text", b"plain", (), b"7bit"
                )
        else:
            # An unclosed multipart, or a message, ends where its last piece does.
            end = max(end, outer_end)
        # Lines are line ends, as Dovecot counts them: a last line without one does
        # not count.
        lines = 0 if media_type == b"multipart" else data.count(b"\n", body_start, end)
        part = Part(
            number,
            header,
            body_start,
            end,
            media_type,
            subtype,
            params,
            encoding,
            children,
            message,
            lines,
            (raw_type, raw_subtype, raw_params, raw_encoding),
            simple,
            fields,
        )
        return part, stop, which, max(outer_end, end)

    def multipart(
        self,
        body_start: int,
        number: tuple[int, ...],
        outer: list[bytes],
        delimiter: bytes,
        digest: bool,
        depth: int,
    ) -> tuple[tuple[Part, ...], int, int, int, int]:
        """The children of a multipart body.

        Returns them, the delimiter that ended the multipart (line start and index in
        ``outer``), where the epilogue begins (-1 without a close delimiter) and, without
        a close delimiter, where its last child ends for its parents (else -1).
        """
        data = self.data
        bounds = [*outer, delimiter]
        mine = len(outer)
        children: list[Part] = []
        line, which = self.next_boundary(body_start, bounds)  # preamble
        last_end = -1
        while which == mine:
            after = line + len(delimiter) - 1
            start = self._next_line(after)
            if data.startswith(b"--", after):  # close delimiter: the epilogue follows
                line, which = self.next_boundary(start, outer)
                return tuple(children), line, which, start, -1
            child, line, which, last_end = self.part(
                start, (*number, len(children) + 1), bounds, digest, depth + 1
            )
            children.append(child)
        return tuple(children), line, which, -1, last_end

    def _next_line(self, pos: int) -> int:
        nl = self.data.find(b"\n", pos)
        return self.size if nl < 0 else nl + 1


def _param(params: tuple[tuple[bytes, bytes], ...], name: bytes) -> bytes | None:
    for key, value in params:
        if key == name:
            return value
    return None


def _encoding(value: bytes) -> bytes:
    """Content-Transfer-Encoding (RFC 2045 6.1): the mechanism token as sent."""
    if _TOKEN.fullmatch(value):  # the usual case: just the token
        return value
    pos = _skip_cfws(value, 0)
    m = _TOKEN.match(value, pos)
    if m is None:
        return b"7bit"
    return m.group()


def _skip_cfws(s: bytes, pos: int) -> int:
    """Skip white space and (nested) comments (RFC 5322 3.2.2)."""
    n = len(s)
    while pos < n:
        c = s[pos]
        if c in (0x20, 0x09, 0x0D, 0x0A):
            m = _CFWS_WS.match(s, pos)
            assert m is not None
            pos = m.end()
        elif c == 0x28:  # "("
            depth = 0
            while pos < n:
                c = s[pos]
                if c == 0x28:
                    depth += 1
                    pos += 1
                elif c == 0x29:
                    depth -= 1
                    pos += 1
                    if depth == 0:
                        break
                else:
                    m = _COMMENT_TEXT.match(s, pos)
                    assert m is not None
                    if m.end() == pos:  # a lone backslash at the end
                        pos += 1
                    else:
                        pos = m.end()
        else:
            break
    return pos


def _content_type(value: bytes | None, in_digest: bool) -> _ContentType:
    """Content-Type as sent (Dovecot's view) and normalised (lower-case, defaults).

    Dovecot keeps the case of the type, subtype and parameter names; a type without a
    subtype stays ``(type, "")`` without parameters, and a value without a type token,
    or with a slash but no subtype, gives ``("", "")`` without parameters.
    """
    default = (b"message", b"rfc822") if in_digest else (b"text", b"plain")
    if value is None:
        return default[0], default[1], (), default[0], default[1], ()
    pos = _skip_cfws(value, 0)
    m = _TOKEN.match(value, pos)
    if m is None:
        return b"", b"", (), default[0], default[1], ()
    raw_type = m.group()
    pos = _skip_cfws(value, m.end())
    if not value.startswith(b"/", pos):
        return raw_type, b"", (), default[0], default[1], ()
    pos = _skip_cfws(value, pos + 1)
    m = _TOKEN.match(value, pos)
    if m is None:
        return b"", b"", (), default[0], default[1], ()
    pos = _skip_cfws(value, m.end())
    if pos < len(value) and value[pos] != 0x3B:  # junk after the subtype: unreadable
        return b"", b"", (), default[0], default[1], ()
    raw_params = _parameters(value, pos)
    params = tuple((name.lower(), val) for name, val in raw_params)
    return raw_type, m.group(), raw_params, raw_type.lower(), m.group().lower(), params


_ContentType = tuple[
    bytes, bytes, tuple[tuple[bytes, bytes], ...], bytes, bytes, tuple[tuple[bytes, bytes], ...]
]


def _parameters(value: bytes, pos: int) -> tuple[tuple[bytes, bytes], ...]:
    """``;`` name ``=`` value pairs, with RFC 2231 continuations joined like Dovecot."""
    plain: list[tuple[bytes, bytes]] = []
    ext: list[tuple[bytes, int, bool, bytes]] = []  # name, index, extended, value
    n = len(value)
    while pos < n:
        semi = value.find(b";", pos)
        if semi < 0:
            break
        pos = _skip_cfws(value, semi + 1)
        m = _TOKEN.match(value, pos)
        if m is None:
            continue
        name = m.group()
        pos = _skip_cfws(value, m.end())
        if not value.startswith(b"=", pos):
            continue
        pos = _skip_cfws(value, pos + 1)
        if value.startswith(b'"', pos):
            q = _QUOTED.match(value, pos)
            assert q is not None
            if not q.group(2):  # unterminated: Dovecot drops it
                break
            param_value = _QUOTED_PAIR.sub(rb"\1", q.group(1))
            pos = q.end()
        else:
            m = _TOKEN.match(value, pos)
            if m is None:
                continue
            param_value = m.group()
            pos = m.end()
        star = name.find(b"*")
        if star >= 0:
            rest = name[star + 1 :]
            digits = _DIGITS.match(rest)
            assert digits is not None
            tail = rest[digits.end() :]
            if not rest or tail in (b"", b"*"):
                index = int(digits.group()) if digits.group() else 0
                ext.append((name[:star], index, not rest or tail == b"*", param_value))
                continue
        plain.append((name, param_value))
    if ext:
        plain.extend(_join_rfc2231(ext))
    return tuple(plain)


def _join_rfc2231(ext: list[tuple[bytes, int, bool, bytes]]) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    ext.sort(key=lambda item: (item[0], item[1]))
    i = 0
    while i < len(ext):
        name = ext[i][0]
        j = i
        while j < len(ext) and ext[j][0].lower() == name.lower():
            j += 1
        group = ext[i:j]
        in_order = all(item[1] == k for k, item in enumerate(group))
        name = group[0][0]
        any_extended = any(item[2] for item in group)
        if not in_order:
            for key, idx, extended, val in group:
                suffix = b"*%d*" % idx if extended else b"*%d" % idx
                out.append((key + suffix, val))
        else:
            joined = b"''" if any_extended and not group[0][2] else b""
            for _key, _idx, extended, val in group:
                if any_extended and not extended:
                    joined += val.replace(b"%", b"%25")
                else:
                    joined += val
            out.append((name + b"*" if any_extended else name, joined))
        i = j
    return out
