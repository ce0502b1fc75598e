"""The frame of a multipart body (RFC 2046), judged as the body arrives.

Django's `MultiPartParser` reads leniently two things an upload must not get away with:
- a body whose last part has no closing delimiter (`--boundary--`): a connection cut
  mid-upload, or a client that stopped sending, is read as a complete form whose last
  file is cut short (a truncated photo or PDF filed as the citizen's paper);
- a file part whose name Django's `sanitize_file_name` throws away (`.`, `..`, a name
  ending in `/` or `\\`, one of control characters only): the part is dropped without a
  word and the route answers that the file is missing.

`MultipartFrame` is fed a body's bytes in order as Django reads them, and keeps a few
bytes and one part's headers at a time, never a file's content. It reads delimiters and
part headers as Django does (a delimiter is `--boundary` wherever it appears, a part's
headers end at the first blank line), so the two never disagree about where a part is.

Where: wherever Django parses a multipart body, under the ASGI server, under WSGI and
in the test client alike. `backend.middleware.MultipartFrameMiddleware` puts a
`FramedStream` in front of the request's body stream (every byte Django reads, through
`request.body` or while parsing the form, passes it: nothing more is read nor kept) and
a `FrameCheck` first among the request's upload handlers: once the parser has read the
whole body, `FrameCheck.upload_complete` judges the frame and raises `BrokenFrame` (a
`MultiPartParserError`, 400 `malformed_multipart` or 422 `filename_invalid`, see
`frame_error`) before any view gets the form. The parser's temporary files go with the
request; no handler has run, nothing is stored.
"""

from __future__ import annotations

from typing import IO, Any, BinaryIO, cast

from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from django.http.multipartparser import (  # type: ignore[attr-defined]  # not in the stubs
    MAX_TOTAL_HEADER_SIZE,
    MultiPartParser,
    MultiPartParserError,
)
from django.utils.http import parse_header_parameters
from django.utils.translation import gettext as _

from backend.errors import ApiError, Unprocessable, field_detail


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a `multipart/form-data` content type, else None (another type,
    or a boundary Django refuses on its own: 400 `malformed_multipart`)."""
    kind, params = parse_header_parameters(content_type)
    boundary = params.get("boundary", "")
    if kind != "multipart/form-data" or not boundary:
        return None
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        return None


def django_keeps_file_name(name: str) -> bool:
    """Whether Django keeps a file part sent under `name` (its own rule: the method
    reads nothing of the parser it belongs to)."""
    return bool(MultiPartParser.sanitize_file_name(cast(MultiPartParser, None), name))


class MultipartFrame:
    def __init__(self, boundary: bytes) -> None:
        self.delimiter = b"--" + boundary
        # Whether the last delimiter read is the closing one (`--boundary--`).
        self.closed = False
        # Whether the body has ended (`finish`): only then is the frame judged.
        self.ended = False
        # The fields of file parts Django would drop for their name, in order.
        self.unnamed_files: list[str] = []
        self._pending = b""
        self._in_headers = False

    @property
    def sound(self) -> bool:
        """Closed, and no file part Django would drop (judge once the body ended)."""
        return self.closed and not self.unnamed_files

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk if self._pending else chunk
        at = 0
        while True:
            if self._in_headers:
                end = data.find(b"\r\n\r\n", at)
                if end == -1:
                    if len(data) - at <= MAX_TOTAL_HEADER_SIZE:
                        self._pending = data[at:]
                        return
                    self._in_headers = False  # Django refuses a part with such headers
                    continue
                self._read_headers(data[at:end])
                self._in_headers = False
                at = end + 4
                continue
            found = data.find(self.delimiter, at)
            if found == -1:
                # Keep what may be the start of a delimiter cut by the chunk's end.
                self._pending = data[max(at, len(data) - len(self.delimiter) + 1) :]
                return
            after = found + len(self.delimiter)
            if len(data) < after + 2:  # not yet known whether `--` follows
                self._pending = data[found:]
                return
            self.closed = data[after : after + 2] == b"--"
            # Django reads headers after every delimiter, the closing one included.
            self._in_headers = True
            at = after

    def finish(self) -> None:
        """The body has ended: a delimiter left at its very end closes nothing."""
        if self._pending.startswith(self.delimiter):
            self.closed = False
        self._pending = b""
        self.ended = True

    def _read_headers(self, block: bytes) -> None:
        # As django.http.multipartparser.parse_boundary_stream reads them.
        for line in block.split(b"\r\n"):
            try:
                main_value, params = parse_header_parameters(line.decode())
                name, _value = main_value.split(":", 1)
            except ValueError:
                continue
            filename = params.get("filename")
            if name == "content-disposition" and filename and not django_keeps_file_name(filename):
                self.unnamed_files.append(params.get("name", "").strip())


def malformed_multipart() -> ApiError:
    return ApiError("malformed_multipart", _("The request body is not a valid multipart form."))


def frame_error(frame: MultipartFrame) -> ApiError:
    """The answer to a body whose frame is not `sound`: 400 `malformed_multipart` for
    a body not closed, else 422 `filename_invalid` naming each file part Django would
    drop for its name."""
    if not frame.closed:
        return malformed_multipart()
    message = _("The file name is not valid (such as “.”, “..” or a folder).")
    return Unprocessable(
        details=[
            field_detail(name, "filename_invalid", message, "file")
            for name in dict.fromkeys(frame.unnamed_files)
        ]
    )


class BrokenFrame(MultiPartParserError):
    """A multipart body whose frame is not `sound` (see `frame_error` for the answer)."""

    def __init__(self, frame: MultipartFrame) -> None:
        super().__init__()
        self.frame = frame


class FramedStream:
    """A request's body stream that shows every byte read from it to a frame. The rest
    (`seek`, `seekable`, `close`) is the stream's own: `request.body` measures a
    seekable body before it reads it once."""

    def __init__(self, stream: IO[bytes], frame: MultipartFrame) -> None:
        self._stream = stream
        self.frame = frame

    def read(self, *args: Any) -> bytes:
        data = self._stream.read(*args)
        self.frame.feed(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data = self._stream.readline(*args)
        self.frame.feed(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class FrameCheck(FileUploadHandler):
    """First of a request's upload handlers: passes every file chunk on untouched, and
    judges the frame once Django's parser has read the body to its end (the parser
    reads what follows the closing delimiter too, before `upload_complete`)."""

    def __init__(self, frame: MultipartFrame, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.frame = frame

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler keeps the file

    def upload_complete(self) -> None:
        self.frame.finish()
        if not self.frame.sound:
            raise BrokenFrame(self.frame)


# The frame of a request's multipart body, on the request (`frame_of`).
_FRAME = "multipart_frame"


def watch_frame(request: HttpRequest) -> None:
    """Judge the frame of `request`'s body if it is multipart, as Django reads it."""
    boundary = boundary_of(request.META.get("CONTENT_TYPE", ""))
    if boundary is None:
        return
    frame = MultipartFrame(boundary)
    setattr(request, _FRAME, frame)
    request._stream = cast(BinaryIO, FramedStream(request._stream, frame))
    request.upload_handlers = [FrameCheck(frame, request), *request.upload_handlers]


def frame_of(request: HttpRequest) -> MultipartFrame | None:
    """The frame `watch_frame` judged, once the body has been parsed; else None."""
    frame: MultipartFrame | None = getattr(request, _FRAME, None)
    return frame if frame is not None and frame.ended else None
