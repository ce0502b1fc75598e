"""Hostile PDFs built to make the active-content check slow, greedy or blind.

Sizes are small: each test counts the work done (parses, whole-file searches, the
limit reached), never the time it took."""

from __future__ import annotations

import io
import logging
import struct
import zlib
from typing import Any
from unittest import mock

import pytest
from pypdf import _reader as pypdf_reader

from backend.errors import ApiError
from dossiers import uploads
from dossiers.uploads import inspect_pdf

_CATALOG = {
    1: b"<< /Type /Catalog /Pages 2 0 R >>",
    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
}
_SCRIPT = b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>"


def _classic(
    objects: dict[int, bytes],
    *,
    headers: dict[int, bytes] | None = None,
    offsets: dict[int, int] | None = None,
    tail: bytes = b"",
) -> bytes:
    """A PDF with a classic cross-reference table; `headers` replaces an object's
    "N 0 obj", `offsets` lies about where an object sits, `tail` comes after the
    end-of-file marker (objects no table lists)."""
    headers, offsets = headers or {}, offsets or {}
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    where = {}
    for number, body in sorted(objects.items()):
        where[number] = offsets.get(number, len(out))
        out += headers.get(number, b"%d 0 obj\n" % number) + body + b"\nendobj\n"
    size = max(objects) + 1
    table = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % where[number] if number in where else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, table)
    return bytes(out) + tail


def _object_stream(header: bytes, body: bytes, count: int) -> bytes:
    data = zlib.compress(header + body)
    return _classic(
        {
            **_CATALOG,
            5: b"<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
            % (count, len(header), len(data))
            + data
            + b"\nendstream",
        }
    )


def _error(data: bytes) -> ApiError:
    with pytest.raises(ApiError) as caught:
        inspect_pdf(io.BytesIO(data))
    return caught.value


def _whole_file_searches() -> Any:
    """pypdf's search of the whole file for an object it cannot find where the
    cross-reference table says (a copy of the file and a regular expression)."""
    return mock.patch.object(pypdf_reader, "get_stream_data", wraps=pypdf_reader.get_stream_data)


def _parses() -> Any:
    """Each object the scan of the bytes parses (pypdf's own parsing of nested values
    is not counted)."""
    return mock.patch("dossiers.uploads.read_object", wraps=uploads.read_object)


def _member_parses(parses: mock.MagicMock, data: bytes) -> list[Any]:
    """The parses of an object stream's decompressed content, not of the file."""
    return [call for call in parses.call_args_list if call.args[0].getvalue() != data]


# --- References to objects that are not there (audit 2) ---------------------------


def test_references_to_missing_objects_cost_no_search_of_the_file(
    caplog: pytest.LogCaptureFixture,
) -> None:
    references = b" ".join(b"%d 0 R" % number for number in range(100, 300))
    data = _classic({**_CATALOG, 1: b"<< /Type /Catalog /Pages 2 0 R /X [" + references + b"] >>"})

    with _whole_file_searches() as searches:
        assert inspect_pdf(io.BytesIO(data)).pages == 1

    assert searches.call_count == 0
    assert not [record for record in caplog.records if "not defined" in record.getMessage()]


def test_an_object_away_from_where_the_table_says_is_found_without_a_search() -> None:
    # The open action's object is listed at a wrong offset: it is still looked at as
    # something that runs by itself (a web link opening with the file).
    body = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>"
    data = _classic(
        {**_CATALOG, 1: body, 4: b"<< /S /URI /URI (https://example.com/) >>"}, offsets={4: 9}
    )

    with _whole_file_searches() as searches:
        error = _error(data)

    assert (error.code, error.details) == ("pdf_active_content", {"found": "/URI"})
    assert searches.call_count == 0


def test_a_file_with_more_objects_than_the_limit_is_refused(settings: Any) -> None:
    settings.PDF_MAX_OBJECTS = 60
    references = b" ".join(b"%d 0 R" % number for number in range(10, 70))
    many = {number: b"<< /N %d >>" % number for number in range(10, 70)}
    data = _classic(
        {**_CATALOG, 1: b"<< /Type /Catalog /Pages 2 0 R /X [" + references + b"] >>", **many}
    )

    error = _error(data)

    assert (error.status, error.code) == (422, "pdf_unreadable")
    assert error.details == {"reason": "too_complex"}

    settings.PDF_MAX_OBJECTS = 100
    assert inspect_pdf(io.BytesIO(data)).pages == 1


# --- The scan of the raw bytes (audit 3) -------------------------------------------


def test_object_stream_members_at_one_offset_are_parsed_once() -> None:
    # 300 members, all at offset 0, all the same array of 1,000 numbers.
    data = _object_stream(b"4 0 " * 300, b"[" + b"0 " * 1000 + b"]", 300)

    with _parses() as parses:
        assert inspect_pdf(io.BytesIO(data)).pages == 1

    assert len(_member_parses(parses, data)) == 1


def test_object_stream_members_beyond_n_are_not_parsed() -> None:
    header = b"".join(b"%d %d " % (10 + index, 4 * index) for index in range(300))
    data = _object_stream(header, b"<<>>" * 300, 2)

    with _parses() as parses:
        assert inspect_pdf(io.BytesIO(data)).pages == 1

    assert len(_member_parses(parses, data)) == 2


def test_overlapping_object_headers_stop_at_the_parsing_limit(settings: Any) -> None:
    # "99 0 obj (" then "N 0 obj (" 300 times, then the closing parentheses: every
    # header starts a string running to the end, so each byte is parsed again and again.
    settings.PDF_MAX_PARSED_BYTES = 20_000
    nested = b"".join(b"%d 0 obj (" % (100 + index) for index in range(300))
    data = _classic(_CATALOG, tail=b"99 0 obj (" + nested + b")" * 301 + b"\nendobj\n")

    with _parses() as parses:
        error = _error(data)

    assert (error.code, error.details) == ("pdf_unreadable", {"reason": "too_complex"})
    assert parses.call_count < 30


def test_compressed_objects_inside_one_long_string_stop_at_the_parsing_limit(
    settings: Any,
) -> None:
    # 200 members at offsets 0, 1, 2... of "((((...))))": each is a string running to
    # the end. pypdf would parse them all, each to its end, as soon as one is used.
    settings.PDF_MAX_PARSED_BYTES = 20_000
    count = 200
    header = b"".join(b"%d %d " % (10 + index, index) for index in range(count))
    content = zlib.compress(header + b"(" * count + b")" * count)
    catalog = b"<< /Type /Catalog /Pages 2 0 R /X [10 0 R 150 0 R] >>"
    out = bytearray(b"%PDF-1.7\n")
    entries: dict[int, tuple[int, int, int]] = {}
    for number, body in {**_CATALOG, 1: catalog}.items():
        entries[number] = (1, len(out), 0)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    entries[5] = (1, len(out), 0)
    out += (
        b"5 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\n"
        % (count, len(header), len(content))
        + b"stream\n"
        + content
        + b"\nendstream\nendobj\n"
    )
    entries.update({10 + index: (2, 5, index) for index in range(count)})
    size = 10 + count + 1
    entries[size - 1] = (1, len(out), 0)
    rows = b"".join(struct.pack(">BIH", *entries.get(n, (0, 0, 0))) for n in range(size))
    out += b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\n" % (
        size - 1,
        size,
        len(rows),
    )
    out += (
        b"stream\n" + rows + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % entries[size - 1][1]
    )

    data = bytes(out)

    with mock.patch.object(pypdf_reader, "read_object", wraps=pypdf_reader.read_object) as pypdf:
        error = _error(data)

    assert (error.code, error.details) == ("pdf_unreadable", {"reason": "too_complex"})
    assert _member_parses(pypdf, data) == []  # pypdf's own reading of every member


def test_running_out_of_memory_is_a_coded_refusal() -> None:
    data = _classic(_CATALOG, tail=b"7 0 obj\n<< /A 1 >>\nendobj\n")

    with mock.patch("dossiers.uploads.read_object", side_effect=MemoryError):
        error = _error(data)

    assert (error.status, error.code, error.details) == (
        422,
        "pdf_unreadable",
        {"reason": "too_complex"},
    )


# --- What pypdf sees and another reader runs (audit 5) ------------------------------

_GO_TO = b"<< /S /GoTo /D [3 0 R /Fit] >>"


def test_a_script_behind_a_duplicate_key_and_a_commented_header_is_refused() -> None:
    # pypdf keeps the first /OpenAction (a harmless go-to), pdf.js the last: object 4,
    # whose header has a comment between its generation and "obj".
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /OpenAction 4 0 R >>"
    data = _classic({**_CATALOG, 1: catalog, 4: _SCRIPT, 5: _GO_TO}, headers={4: b"4 0 %c\nobj\n"})

    error = _error(data)

    assert (error.code, error.details) == ("pdf_active_content", {"found": "/JS"})


def test_a_listed_object_whose_header_has_a_comment_is_scanned() -> None:
    data = _classic({**_CATALOG, 4: _SCRIPT}, headers={4: b"4 %comment\n0 % another\nobj\n"})

    error = _error(data)

    assert (error.code, error.details) == ("pdf_active_content", {"found": "/JS"})


@pytest.mark.parametrize(
    "catalog",
    [
        # A link that opens by itself for a last-wins reader.
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /OpenAction 4 0 R >>",
        # A script pypdf drops without a trace: the second, inline, value.
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /OpenAction " + _SCRIPT + b" >>",
    ],
)
def test_a_dictionary_with_a_key_twice_is_refused(catalog: bytes) -> None:
    link = b"<< /S /URI /URI (https://example.com/) >>"
    data = _classic({**_CATALOG, 1: catalog, 4: link, 5: _GO_TO})

    error = _error(data)

    assert (error.status, error.code) == (422, "pdf_unreadable")
    assert error.details == {"reason": "duplicate_key", "key": "/OpenAction"}


def test_the_same_file_without_the_duplicate_is_accepted() -> None:
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>"
    link = b"<< /S /URI /URI (https://example.com/) >>"

    assert (
        inspect_pdf(io.BytesIO(_classic({**_CATALOG, 1: catalog, 4: link, 5: _GO_TO}))).pages == 1
    )


def test_duplicate_keys_are_seen_whatever_the_log_level(caplog: pytest.LogCaptureFixture) -> None:
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /OpenAction 5 0 R >>"
    pypdf_logger = logging.getLogger("pypdf")
    level = pypdf_logger.level
    pypdf_logger.setLevel(logging.ERROR)  # as a LOG_LEVEL of ERROR would
    try:
        error = _error(_classic({**_CATALOG, 1: catalog, 5: _GO_TO}))
    finally:
        pypdf_logger.setLevel(level)

    assert error.details == {"reason": "duplicate_key", "key": "/OpenAction"}
    # Nor is the warning logged, which the level holds back.
    assert [record for record in caplog.records if record.name.startswith("pypdf")] == []
