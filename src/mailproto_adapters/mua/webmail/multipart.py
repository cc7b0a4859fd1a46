"""A streaming ``multipart/form-data`` parser (RFC 7578 over RFC 2046 5.1.1), sans I/O.

The body is fed in pieces as it arrives; file parts go straight into a spooled temporary
file (memory up to ``spool_memory``, then disk) and text fields into small buffers with
their own limit, so an upload never sits whole in memory. The delimiter search keeps only
a delimiter's length of tail between pieces, so the work is linear in the body.
"""

from __future__ import annotations

import email.parser
import email.policy
import tempfile
from typing import IO

import attrs

__all__ = ["MultipartError", "MultipartParser", "TooLarge", "Upload"]

MAX_PART_HEADER = 8192


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data (HTTP 400)."""


class TooLarge(MultipartError):
    """A field, a file or the number of parts passed its limit (HTTP 413)."""


@attrs.define(kw_only=True)
class Upload:
    """One uploaded file: the form field, the name the browser gave, its type and data."""

    field: str
    filename: str
    content_type: str
    file: IO[bytes]
    size: int = 0

    def read(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    def close(self) -> None:
        self.file.close()


_PREAMBLE, _AFTER_DELIMITER, _HEADERS, _BODY, _END = range(5)


class MultipartParser:
    """Feed with `feed`, end with `finish`; then `fields` and `uploads` hold the form."""

    def __init__(
        self,
        boundary: str,
        *,
        max_field: int = 1 << 20,
        max_parts: int = 64,
        spool_memory: int = 1 << 20,
    ) -> None:
        if not boundary or len(boundary) > 70 or not boundary.isascii():
            raise MultipartError("bad multipart boundary")
        self._delimiter = b"\r\n--" + boundary.encode("ascii")
        # A CRLF in front lets the first delimiter be found like every other one.
        self._buf = bytearray(b"\r\n")
        self._state = _PREAMBLE
        self._max_field = max_field
        self._max_parts = max_parts
        self._spool_memory = spool_memory
        self._field: bytearray | None = None
        self._field_name = ""
        self._upload: Upload | None = None
        self.fields: dict[str, list[str]] = {}
        self.uploads: list[Upload] = []
        self._parts = 0

    def feed(self, data: bytes) -> None:
        self._buf += data
        while self._step():
            pass

    def finish(self) -> None:
        if self._state != _END:
            self.close()
            raise MultipartError("the multipart body ended early")

    def close(self) -> None:
        """Drop every spooled upload (after an error, or once the form is used)."""
        for upload in self.uploads:
            upload.close()
        if self._upload is not None:
            self._upload.close()

    def _step(self) -> bool:
        buf = self._buf
        if self._state == _PREAMBLE:
            at = buf.find(self._delimiter)
            if at < 0:
                # Keep a delimiter's worth of tail; the preamble itself is ignored.
                keep = len(self._delimiter)
                if len(buf) > keep:
                    del buf[: len(buf) - keep]
                return False
            del buf[: at + len(self._delimiter)]
            self._state = _AFTER_DELIMITER
            return True
        if self._state == _AFTER_DELIMITER:
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > 256:
                    raise MultipartError("junk after a multipart delimiter")
                return False
            line = bytes(buf[:end])
            del buf[: end + 2]
            if line.startswith(b"--"):
                self._state = _END
                buf.clear()
                return False
            if line.strip(b" \t"):
                raise MultipartError("junk after a multipart delimiter")
            self._state = _HEADERS
            return True
        if self._state == _HEADERS:
            end = buf.find(b"\r\n\r\n")
            if buf.startswith(b"\r\n"):
                end, head = 0, b""
            elif end < 0:
                if len(buf) > MAX_PART_HEADER:
                    raise TooLarge("a part's header is too long")
                return False
            else:
                head = bytes(buf[:end])
            del buf[: end + (2 if end == 0 else 4)]
            self._start_part(head)
            self._state = _BODY
            return True
        if self._state == _BODY:
            at = buf.find(self._delimiter)
            if at < 0:
                keep = len(self._delimiter) - 1
                if len(buf) > keep:
                    self._write(bytes(buf[: len(buf) - keep]))
                    del buf[: len(buf) - keep]
                return False
            self._write(bytes(buf[:at]))
            del buf[: at + len(self._delimiter)]
            self._end_part()
            self._state = _AFTER_DELIMITER
            return True
        # _END: the epilogue is ignored.
        buf.clear()
        return False

    def _start_part(self, head: bytes) -> None:
        self._parts += 1
        if self._parts > self._max_parts:
            raise TooLarge("too many parts in the form")
        parser = email.parser.BytesParser(policy=email.policy.HTTP)
        try:
            headers = parser.parsebytes(head + b"\r\n\r\n", headersonly=True)
            name = headers.get_param("name", header="content-disposition")
            filename = headers.get_filename()
            content_type = headers.get_content_type()
        except Exception as exc:  # the email package's errors on odd headers
            raise MultipartError(f"bad part header: {exc}") from None
        if not isinstance(name, str):
            raise MultipartError("a form part without a name")
        if filename is not None:
            spool = tempfile.SpooledTemporaryFile(max_size=self._spool_memory)  # noqa: SIM115
            self._upload = Upload(
                field=name, filename=filename, content_type=content_type, file=spool
            )
        else:
            self._field = bytearray()
            self._field_name = name

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if self._upload is not None:
            self._upload.file.write(data)
            self._upload.size += len(data)
        elif self._field is not None:
            if len(self._field) + len(data) > self._max_field:
                raise TooLarge(f"the field {self._field_name!r} is too long")
            self._field += data

    def _end_part(self) -> None:
        if self._upload is not None:
            upload, self._upload = self._upload, None
            if upload.filename or upload.size:
                self.uploads.append(upload)
            else:
                upload.close()  # an empty file input
        elif self._field is not None:
            value = self._field.decode("utf-8", "replace")
            self.fields.setdefault(self._field_name, []).append(value)
            self._field = None
