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
from PIL import Image
from pypdf import PdfWriter
from pypdf import _reader as pypdf_reader

from backend.errors import ApiError
from backend.pdf import new_document, qr_png
from dossiers import uploads
from dossiers.result_signatures import sign_result
from dossiers.uploads import inspect_pdf
from tests.documents import pki as pki_files
from tests.dossiers.attachments import samples

_CATALOG = {
    1: b"<< /Type /Catalog /Pages 2 0 R >>",
    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
}
_SCRIPT = b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>"
_URI_ACTION = b"<< /S /URI /URI (https://example.com/) >>"


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


def _object_stream(header: bytes, body: bytes, count: int, *, before: bytes = b"\n") -> bytes:
    """A clean file and an object stream (object 5) nothing refers to; `before` is
    written between its dictionary and "stream"."""
    data = zlib.compress(header + body)
    return _classic(
        {
            **_CATALOG,
            5: b"<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>"
            % (count, len(header), len(data))
            + before
            + b"stream\n"
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


# --- A comment between a dictionary and "stream" ------------------------------------
# pdf.js, PDFium and Acrobat skip the comment and read a stream; pypdf reads a plain
# dictionary and never sees the data (an object stream's members above all).

_COMMENT_BEFORE_STREAM = ("pdf_unreadable", {"reason": "comment_before_stream"})


@pytest.mark.parametrize("member", [_SCRIPT, b"<< /S /Launch /F (cmd.exe) >>"])
@pytest.mark.parametrize("before", [b" % c\n", b"\n%c\r\n% d\n", b"%\r"])
def test_an_object_stream_after_a_comment_is_refused(member: bytes, before: bytes) -> None:
    # Nothing refers to it: a viewer rebuilding a damaged file's table finds object 9.
    data = _object_stream(b"9 0 ", member, 1, before=before)
    plain = _object_stream(b"9 0 ", member, 1)

    error = _error(data)

    assert (error.code, error.details) == _COMMENT_BEFORE_STREAM
    assert _error(plain).code == "pdf_active_content"  # as a viewer reads it


def test_an_object_stream_after_a_comment_the_table_leads_to_is_refused_with_the_reason() -> None:
    # The open action is compressed in it: pypdf finds no stream where the table says.
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>"
    listed = samples._raw_pdf({**_CATALOG, 1: catalog}, {4: _GO_TO})
    at = listed.index(b" >>\nstream", listed.index(b"/Type /ObjStm"))
    commented = listed[:at] + b">>%\n" + listed[at + 4 :]  # the same length

    error = _error(commented)

    assert inspect_pdf(io.BytesIO(listed)).pages == 1
    assert (error.code, error.details) == _COMMENT_BEFORE_STREAM


def test_comments_after_many_dictionary_ends_are_gone_over_once() -> None:
    # One line of ">>%" a million bytes long: each ">>" in it starts a comment that
    # runs to the end of the line.
    data = _classic(_CATALOG, tail=b"%" + b">>%" * 300_000 + b"\n")
    rest = uploads._REST_OF_COMMENTS

    with mock.patch.object(uploads, "_REST_OF_COMMENTS", mock.Mock(wraps=rest)) as comments:
        assert inspect_pdf(io.BytesIO(data)).pages == 1

    assert comments.match.call_count == 1


# --- Objects pypdf cannot read ------------------------------------------------------
# A viewer rebuilding a damaged file's table reads every object whose header it finds,
# with a recovery of its own: one pypdf cannot read, or reads only in part, is refused.


def _unreadable(number: int) -> tuple[str, dict[str, str]]:
    return ("pdf_unreadable", {"reason": "unreadable_object", "object": f"{number} 0"})


@pytest.mark.parametrize("member", [_SCRIPT, b"<< /S /Launch /F (cmd.exe) >>"])
def test_an_object_stream_pypdf_cannot_read_is_refused(member: bytes) -> None:
    # Something after "stream" on its line: pypdf gives up on the object, pdf.js
    # starts the data on the next line. Nothing refers to it.
    data = _object_stream(b"9 0 ", member, 1).replace(b">>\nstream\n", b">>\nstream x\n")
    plain = _object_stream(b"9 0 ", member, 1)

    error = _error(data)

    assert (error.code, error.details) == _unreadable(5)
    assert _error(plain).code == "pdf_active_content"  # as a viewer reads it


@pytest.mark.parametrize(
    ("objects", "number"),
    [
        # pypdf keeps the keys before a value it cannot read ("}") and drops the rest;
        # pdf.js takes "}" as a value and reads on. The catalogue, walked to:
        ({1: b"<< /Type /Catalog /Pages 2 0 R /X } /OpenAction " + _SCRIPT + b" >>"}, 1),
        # an object nothing refers to:
        ({4: b"<< /Type /Action /X } /S /Launch /F (cmd.exe) >>"}, 4),
        # A key that is no name (ISO 32000 7.3.7 allows names only): pypdf skips it and
        # reads the next token as the key, where another reader may pair them otherwise
        # (`(OpenAction)` then an action: a skipped string, a dictionary as a key).
        ({1: b"<< /Type /Catalog /Pages 2 0 R (OpenAction) " + _URI_ACTION + b" >>"}, 1),
        ({1: b"<< /Type /Catalog /Pages 2 0 R (Lang) (vi) >>"}, 1),
        ({1: b"<< /Type /Catalog /Pages 2 0 R [/Lang] (vi) >>"}, 1),
        ({4: b"<< 5 /Producer (Scanner) >>"}, 4),
        ({4: b"<< /Producer (Scanner) true (x) >>"}, 4),
    ],
    ids=[
        "value-walked",
        "value-unlisted",
        "key-string-then-action",
        "key-string",
        "key-array",
        "key-number",
        "key-boolean",
    ],
)
def test_a_dictionary_pypdf_reads_only_in_part_is_refused(
    objects: dict[int, bytes], number: int
) -> None:
    error = _error(_classic({**_CATALOG, **objects}))

    assert (error.code, error.details) == _unreadable(number)


@pytest.mark.parametrize(
    "member",
    [b"<< /Type /Action /X } /S /Launch /F (cmd.exe) >>", b"<< /Producer (Scanner) (Title) (x) >>"],
    ids=["value", "key"],
)
def test_a_compressed_dictionary_pypdf_reads_only_in_part_is_refused(member: bytes) -> None:
    data = _object_stream(b"9 0 ", member, 1)

    error = _error(data)

    assert (error.code, error.details) == _unreadable(9)


def test_an_object_in_part_read_beyond_the_table_is_refused_without_a_number() -> None:
    # A trailer is no object: nothing to name.
    data = _classic(_CATALOG).replace(b"/Root 1 0 R", b"/Root 1 0 R /X } /Y 1")

    error = _error(data)

    assert (error.code, error.details) == ("pdf_unreadable", {"reason": "unreadable_object"})


# Text that reads as an object header inside a stream's data (a page's uncompressed
# text, a photo's bytes) is data where every reader ends the stream at one place.


def _uncompressed_paper(text: str) -> bytes:
    """A page as fpdf2 writes it without compression, its text in a core font (shown
    as written, in a string of the content stream), and a photo whose JPEG comment
    holds the same text (a JPEG's bytes are stored as they are)."""
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(photo, "JPEG", comment=text.encode())
    pdf = new_document("Hướng dẫn")
    pdf.set_compression(False)
    pdf.set_font("helvetica", "", 11)
    pdf.multi_cell(0, 8, text=text)
    pdf.image(photo, x=20, y=120, w=40)
    return bytes(pdf.output())


def _with_stream(content: bytes, *, length: int | None = None) -> bytes:
    """The catalogue's page drawn by a content stream (object 4) holding `content`."""
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>"
    size = len(content) if length is None else length
    stream = b"<< /Length %d >>\nstream\n%s\nendstream" % (size, content)
    return _classic({**_CATALOG, 3: page, 4: stream})


def test_header_like_text_in_a_page_or_a_photo_is_data() -> None:
    text = "A PDF starts with %PDF-1.7, holds 4321 0 obj and 13 0 obj << and ends with %%EOF."
    paper = _uncompressed_paper(text)
    assert paper.count(b"4321 0 obj") == 2  # in the page's text and in the photo

    assert inspect_pdf(io.BytesIO(paper)).pages == 1
    assert inspect_pdf(io.BytesIO(_with_stream(b"BT (9 0 obj \xff\xfe) Tj ET"))).pages == 1


def test_header_like_text_in_a_stream_that_may_end_elsewhere_is_still_read() -> None:
    # A stream holding "endobj" ends there for a reader rebuilding a damaged file...
    hidden = b"endobj\n9 0 obj\n<< /Type /Action /X } /S /Launch /F (cmd.exe) >>\nendobj"
    assert (_error(_with_stream(hidden)).code, _error(_with_stream(hidden)).details) == (
        _unreadable(9)
    )
    # ... and one holding "endstream" for a reader that distrusts its /Length.
    script = b"endstream\nendobj\n9 0 obj\n" + _SCRIPT + b"\nendobj\n"
    assert _error(_with_stream(script)).details == {"found": "/JS"}
    # A /Length that lands on no "endstream": read up to the first one, as a viewer
    # reads it, the object after it is read too.
    assert _error(_with_stream(script, length=5)).details == {"found": "/JS"}
    # Text alone, the same file is accepted (what the first test checks).
    assert inspect_pdf(io.BytesIO(_with_stream(b"BT (9 0 obj) Tj ET"))).pages == 1


@pytest.mark.parametrize(
    "objects",
    [
        # A comment after a dictionary that is no stream, and one inside a stream's.
        {4: b"<< /Producer (Scanner) >> % written by the scanner"},
        {4: b"<< /Length 3 % the data\n >>\nstream\nabc\nendstream"},
        # A dictionary's end and a comment inside a string.
        {4: b"<< /Title (a >> % b) >>"},
        # An empty object and a null one (some generators write them for freed numbers).
        {4: b""},
        {4: b"null"},
        # Text that reads as a header, inside a string: its body is read and parses.
        {4: b"<< /Title (4 0 obj 5) >>"},
    ],
)
def test_objects_pypdf_and_viewers_read_alike_are_accepted(objects: dict[int, bytes]) -> None:
    assert inspect_pdf(io.BytesIO(_classic({**_CATALOG, **objects}))).pages == 1


def _fpdf2_paper(pages: int) -> bytes:
    """As the project writes its own papers (fpdf2, the Vietnamese font), with a photo,
    a picture with transparency and a QR code on each page, compressed."""
    pdf = new_document("Giấy khai sinh")
    for page in range(pages):
        if page:
            pdf.add_page()
        pdf.multi_cell(0, 8, text="Cộng hòa xã hội chủ nghĩa Việt Nam. " * 10)
        pdf.image(io.BytesIO(samples.jpeg_bytes()), x=20, y=120, w=80)
        pdf.image(io.BytesIO(samples.png_bytes(mode="RGBA")), x=110, y=120, w=60)
        pdf.image(io.BytesIO(qr_png("https://dichvucong.gov.vn/")), x=20, y=200, w=30)
    return bytes(pdf.output())


def _updated(data: bytes) -> bytes:
    """`data` updated incrementally by pypdf: a page and the document information
    replaced by new objects of the same numbers, the old ones left in the file."""
    writer = PdfWriter(io.BytesIO(data), incremental=True)
    writer.add_metadata({"/Title": "Bản cập nhật"})
    writer.pages[0].rotate(90)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdfs_as_libraries_write_them_are_accepted(settings: Any) -> None:
    # What citizens upload, and the results agencies sign (re-uploaded from the wallet).
    pki = pki_files.configure(settings, "SIGNER")
    paper = _fpdf2_paper(3)
    signed = sign_result("SIGNER", _fpdf2_paper(2), "ABCD1234")  # the project's own
    files = {
        "fpdf2": paper,
        "fpdf2, updated": _updated(paper),
        "pypdf": samples.pdf_bytes(4),
        "pypdf, updated twice": _updated(_updated(samples.pdf_bytes(2))),
        "signed by the server": signed,
        "signed by the agency": pki_files.sign_with(pki, "agency", pki_files.make_pdf(pages=2)),
        "signed, then updated": _updated(signed),
    }
    # Each update a revision of its own, after the first one's end-of-file marker.
    assert [files[name].count(b"%%EOF") for name in ("fpdf2, updated", "pypdf, updated twice")] == [
        2,
        3,
    ]

    pages = {name: inspect_pdf(io.BytesIO(data)).pages for name, data in files.items()}

    assert pages == {
        "fpdf2": 3,
        "fpdf2, updated": 3,
        "pypdf": 4,
        "pypdf, updated twice": 2,
        "signed by the server": 2,
        "signed by the agency": 2,
        "signed, then updated": 2,
    }


# --- A key given twice (real scanner apps write some) -------------------------------
# pdf.js, PDFium, qpdf and MuPDF use the last value, pypdf the first, poppler the last
# (or any, from 32 keys up): the check looks at every value, the reader serves the last.

_LINK = b"<< /S /URI /URI (https://example.com/) >>"
_LAUNCH = b"<< /S /Launch /F (cmd.exe) >>"


@pytest.mark.parametrize(
    ("catalog", "found"),
    [
        # A link that opens by itself, for a last-wins reader, then for a first-wins one.
        (b"/OpenAction 5 0 R /OpenAction 4 0 R", "/URI"),
        (b"/OpenAction 4 0 R /OpenAction 5 0 R", "/URI"),
        # An inline script, second or first: pypdf drops the second without a trace.
        (b"/OpenAction 5 0 R /OpenAction " + _SCRIPT, "/JS"),
        (b"/OpenAction " + _SCRIPT + b" /OpenAction 5 0 R", "/JS"),
        # The middle one of three.
        (b"/OpenAction 5 0 R /OpenAction " + _LINK + b" /OpenAction 5 0 R", "/URI"),
        # Inside a direct dictionary: the action type given twice, either order.
        (b"/OpenAction << /S /GoTo /D [3 0 R /Fit] /S /Launch /F (cmd.exe) >>", "/Launch"),
        (b"/OpenAction << /S /Launch /F (cmd.exe) /S /GoTo /D [3 0 R /Fit] >>", "/Launch"),
        # The key that runs it by itself, given twice, the second one a document action.
        (b"/AA 6 0 R /AA << /WC " + _LINK + b" >>", "/URI"),
        # A repeated key whose values are both harmless does not hide the rest.
        (b"/Lang (vi) /Lang (en) /OpenAction 4 0 R", "/URI"),
    ],
)
def test_active_content_behind_a_key_given_twice_is_refused_whichever_value_wins(
    catalog: bytes, found: str
) -> None:
    body = b"<< /Type /Catalog /Pages 2 0 R " + catalog + b" >>"
    data = _classic({**_CATALOG, 1: body, 4: _LINK, 5: _GO_TO, 6: b"<< >>"})

    error = _error(data)

    assert (error.code, error.details) == ("pdf_active_content", {"found": found})


def test_an_embedded_file_type_given_twice_is_refused() -> None:
    stream = b"<< /Type /XObject /Type /EmbeddedFile /Length 3 >>\nstream\nabc\nendstream"
    catalog = b"<< /Type /Catalog /Pages 2 0 R /X 4 0 R >>"

    error = _error(_classic({**_CATALOG, 1: catalog, 4: stream}))

    assert (error.code, error.details) == ("pdf_active_content", {"found": "/EmbeddedFile"})


def test_a_key_given_twice_in_a_compressed_object_is_looked_at_with_every_value() -> None:
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>"
    data = samples._raw_pdf(
        {**_CATALOG, 1: catalog},
        {4: b"<< /S /GoTo /D [3 0 R /Fit] /S /Launch /F (cmd.exe) >>"},
    )

    error = _error(data)

    assert (error.code, error.details) == ("pdf_active_content", {"found": "/Launch"})


def test_a_catalogue_given_twice_in_the_trailer_is_looked_at_too() -> None:
    # pypdf opens the first /Root, a viewer the second: a catalogue no object holds.
    second = b"<< /Type /Catalog /Pages 2 0 R /OpenAction " + _SCRIPT + b" >>"
    data = _classic(_CATALOG).replace(b"/Root 1 0 R", b"/Root 1 0 R /Root " + second)

    error = _error(data)

    assert (error.code, error.details) == ("pdf_active_content", {"found": "/JS"})


@pytest.mark.parametrize(
    "objects",
    [
        # As scanner apps and generators write them: the type, a box, the document info.
        {1: b"<< /Type /Catalog /Type /Catalog /Pages 2 0 R >>"},
        {3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /MediaBox [0 0 595 842] >>"},
        {4: b"<< /Producer (Scanner 1.0) /Producer (Scanner 1.0) /CreationDate (D:2026) >>"},
        {1: b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /OpenAction 5 0 R >>"},
    ],
)
def test_a_harmless_key_given_twice_is_accepted(objects: dict[int, bytes]) -> None:
    data = _classic({**_CATALOG, 4: b"<< >>", 5: _GO_TO, **objects})

    assert inspect_pdf(io.BytesIO(data)).pages == 1


def test_a_key_given_twice_in_the_trailer_is_accepted() -> None:
    data = _classic({**_CATALOG, 4: b"<< /Producer (Scanner) >>"})
    data = data.replace(b"/Root 1 0 R", b"/Info 4 0 R /Root 1 0 R /Info 4 0 R")

    assert inspect_pdf(io.BytesIO(data)).pages == 1


@pytest.mark.parametrize(
    ("pages", "expected"),
    [
        (b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Kids [3 0 R 4 0 R] /Count 2 >>", 2),
        (b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 /Kids [3 0 R] /Count 1 >>", 1),
    ],
)
def test_the_pages_are_counted_with_the_last_value_as_viewers_count_them(
    pages: bytes, expected: int
) -> None:
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"

    assert inspect_pdf(io.BytesIO(_classic({**_CATALOG, 2: pages, 4: page}))).pages == expected


def test_the_last_value_is_served_for_an_object_outside_the_table_and_a_compressed_one() -> None:
    pages = b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Kids [3 0 R 4 0 R] /Count 2 >>"
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"
    unlisted = _classic({**_CATALOG, 4: page}, offsets={2: 9}).replace(
        b"2 0 obj\n" + _CATALOG[2], b"2 0 obj\n" + pages
    )
    compressed = samples._raw_pdf({1: _CATALOG[1]}, {2: pages, 3: _CATALOG[3], 4: page})

    assert inspect_pdf(io.BytesIO(unlisted)).pages == 2
    assert inspect_pdf(io.BytesIO(compressed)).pages == 2


def test_the_pages_are_those_of_the_last_catalogue_a_trailer_gives() -> None:
    catalogue = b"<< /Type /Catalog /Pages 6 0 R >>"
    pages = b"<< /Type /Pages /Kids [7 0 R 8 0 R] /Count 2 >>"
    page = b"<< /Type /Page /Parent 6 0 R /MediaBox [0 0 595 842] >>"
    classic = _classic({**_CATALOG, 5: catalogue, 6: pages, 7: page, 8: page})
    classic = classic.replace(b"/Root 1 0 R", b"/Root 1 0 R /Root 5 0 R")
    stream = samples._raw_pdf({**_CATALOG, 5: catalogue, 6: pages, 7: page, 8: page})
    stream = stream.replace(b"/Root 1 0 R", b"/Root 1 0 R/Root 5 0 R")

    assert inspect_pdf(io.BytesIO(classic)).pages == 2
    assert inspect_pdf(io.BytesIO(stream)).pages == 2


def test_a_key_given_twice_in_a_dictionary_that_cannot_be_read_again_is_refused() -> None:
    # pypdf keeps what it read up to the broken value; what a viewer makes of the
    # rest cannot be told, and the repeated key may hide anything.
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /OpenAction 5 0 R /X >>"

    error = _error(_classic({**_CATALOG, 1: catalog, 5: _GO_TO}))

    assert (error.status, error.code) == (422, "pdf_unreadable")
    assert error.details == {"reason": "duplicate_key", "key": "/OpenAction"}


def test_an_object_whose_header_has_a_comment_is_read_where_it_is_used() -> None:
    # pypdf reads no comment inside "2 0 obj" and made the file unreadable; a lexer
    # skips it, as PDF readers do.
    data = _classic(_CATALOG, headers={2: b"2 0 %c\nobj\n"})

    assert inspect_pdf(io.BytesIO(data)).pages == 1


def test_keys_given_twice_are_seen_whatever_the_log_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /OpenAction " + _SCRIPT + b" >>"
    pypdf_logger = logging.getLogger("pypdf")
    level = pypdf_logger.level
    pypdf_logger.setLevel(logging.ERROR)  # as a LOG_LEVEL of ERROR would
    try:
        error = _error(_classic({**_CATALOG, 1: catalog, 5: _GO_TO}))
    finally:
        pypdf_logger.setLevel(level)

    assert (error.code, error.details) == ("pdf_active_content", {"found": "/JS"})
    # Nor is the warning logged, which the level holds back.
    assert [record for record in caplog.records if record.name.startswith("pypdf")] == []


@pytest.mark.parametrize(
    ("objects", "headers", "found"),
    [
        # A key given twice (the script is the value pypdf drops).
        ({1: _CATALOG[1][:-2] + b"/OpenAction 5 0 R /OpenAction " + _SCRIPT + b" >>"}, {}, "/JS"),
        # A table entry pypdf drops (a comment in the header): the scan reads it there.
        ({4: _SCRIPT}, {4: b"4 %c\n0 obj\n"}, "/JS"),
    ],
)
@pytest.mark.parametrize("silenced", ["logging.disable", "logger disabled"])
def test_what_pypdf_reports_is_seen_with_logging_silenced(
    objects: dict[int, bytes],
    headers: dict[int, bytes],
    found: str,
    silenced: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # logging.disable stops a record before any logger sees it; a dictConfig with
    # disable_existing_loggers disables the loggers made before it.
    data = _classic({**_CATALOG, 5: _GO_TO, **objects}, headers=headers)
    loggers = [
        logging.getLogger(name) for name in ("pypdf.generic._data_structures", "pypdf._reader")
    ]
    if silenced == "logging.disable":
        logging.disable(logging.CRITICAL)
    for logger in loggers if silenced == "logger disabled" else ():
        logger.disabled = True
    try:
        error = _error(data)
    finally:
        logging.disable(logging.NOTSET)
        for logger in loggers:
            logger.disabled = False

    assert (error.code, error.details) == ("pdf_active_content", {"found": found})
    assert [record for record in caplog.records if record.name.startswith("pypdf")] == []


# --- What an open action points at -------------------------------------------------
# fpdf2 and office suites open the first page by an /OpenAction (a destination): the
# links on that page still wait for a click. What the action runs, its /Next chain and
# the page's own open actions, runs by itself.

_PAGE_WITH_LINK = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Annots [4 0 R] >>"
_LINK_ANNOTATION = b"<< /Type /Annot /Subtype /Link /Rect [50 50 200 80] /A " + _LINK + b" >>"


@pytest.mark.parametrize(
    "open_action",
    [b"[3 0 R /FitH null]", b"[3 0 R /XYZ null null 0]", b"<< /S /GoTo /D [3 0 R /Fit] >>"],
)
def test_a_link_on_the_page_an_open_action_shows_is_accepted(open_action: bytes) -> None:
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction " + open_action + b" >>"
    data = _classic({**_CATALOG, 1: catalog, 3: _PAGE_WITH_LINK, 4: _LINK_ANNOTATION})

    assert inspect_pdf(io.BytesIO(data)).pages == 1


def test_a_link_as_fpdf2_writes_it_is_accepted() -> None:
    pdf = new_document("Biên nhận")
    pdf.cell(text="Tra cứu hồ sơ", link="https://dichvucong.gov.vn/")
    data = bytes(pdf.output())
    assert b"/OpenAction [3 0 R /FitH null]" in data

    assert inspect_pdf(io.BytesIO(data)).pages == 1


@pytest.mark.parametrize(
    ("open_action", "page"),
    [
        # The page shown opens a web address by itself.
        (b"[3 0 R /Fit]", _PAGE_WITH_LINK[:-2] + b"/AA << /O " + _LINK + b" >> >>"),
        # The go-to's /Next list does.
        (b"<< /S /GoTo /D [3 0 R /Fit] /Next [5 0 R " + _LINK + b"] >>", _PAGE_WITH_LINK),
        (b"<< /S /GoTo /D [3 0 R /Fit] /Next 6 0 R >>", _PAGE_WITH_LINK),
    ],
)
def test_what_an_open_action_runs_is_still_refused(open_action: bytes, page: bytes) -> None:
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction " + open_action + b" >>"
    objects = {1: catalog, 3: page, 4: _LINK_ANNOTATION, 5: _GO_TO, 6: _LINK}

    error = _error(_classic({**_CATALOG, **objects}))

    assert (error.code, error.details) == ("pdf_active_content", {"found": "/URI"})


# --- A stream's /Length given twice -------------------------------------------------
# pypdf cuts a stream's data with the first /Length, pdf.js, PDFium, qpdf and MuPDF
# with the last (each rereads up to the first "endstream" when its length lands
# elsewhere): in `samples.pdf_with_stream_lengths`, CUT ends the object stream at a
# false "endstream", before object 7 (a script run on open); FULL at the real end.

_HARMLESS = b"<< /S /GoTo /D [3 0 R /Fit] >>"
_OPEN = b"<< /S /Launch /F (cmd.exe) >>"
_LENGTH_GIVEN_TWICE = ("pdf_unreadable", {"reason": "duplicate_key", "key": "/Length"})


@pytest.mark.parametrize(
    "lengths",
    [
        b"/Length CUT /Length FULL",
        # The first lands on no "endstream": pypdf rereads up to the first one.
        b"/Length 3 /Length FULL",
        b"/Length CUT /Length CUT /Length FULL",
        # Beyond what pypdf reads at all: it drops the whole object stream.
        b"/Length 99999999999 /Length FULL",
    ],
)
@pytest.mark.parametrize("hidden", [samples._OPEN_SCRIPT, _OPEN])
def test_active_content_past_the_first_of_two_lengths_is_refused(
    lengths: bytes, hidden: bytes
) -> None:
    data = samples.pdf_with_stream_lengths(lengths, hidden)
    # As a viewer reads it: the whole stream, the action in it run on open.
    whole = samples.pdf_with_stream_lengths(b"/Length FULL", hidden)

    error = _error(data)

    assert (error.status, error.code) == (422, "pdf_unreadable")
    if b"99999999999" not in lengths:  # pypdf reading it is what fails the walk there
        assert (error.code, error.details) == _LENGTH_GIVEN_TWICE
    assert _error(whole).code == "pdf_active_content"


def test_an_object_stream_nothing_refers_to_with_two_lengths_is_refused() -> None:
    # Found by the scan of the bytes alone, whether pypdf reads it (the first length
    # lands on the false end) or not (the first is beyond its limit).
    catalog = b"<< /Type /Catalog /Pages 2 0 R >>"
    for lengths in (b"/Length CUT /Length FULL", b"/Length 99999999999 /Length FULL"):
        data = samples.pdf_with_stream_lengths(lengths, catalog=catalog)

        error = _error(data)

        assert (error.code, error.details) == _LENGTH_GIVEN_TWICE


def test_the_last_of_two_lengths_cutting_short_is_refused_too() -> None:
    # pypdf reads the whole stream here and finds the script; with a harmless object
    # 7 there is nothing to find, and the two ends are refused all the same.
    script = samples.pdf_with_stream_lengths(b"/Length FULL /Length CUT")
    harmless = samples.pdf_with_stream_lengths(b"/Length FULL /Length CUT", _HARMLESS)

    assert (_error(script).code, _error(script).details) == ("pdf_active_content", {"found": "/JS"})
    assert (_error(harmless).code, _error(harmless).details) == _LENGTH_GIVEN_TWICE


@pytest.mark.parametrize(
    ("lengths", "objects"),
    [
        (b"/Length 9 0 R /Length 10 0 R", {9: b"CUT", 10: b"FULL"}),
        (b"/Length 9 0 R /Length FULL", {9: b"CUT"}),
        (b"/Length CUT /Length 10 0 R", {10: b"FULL"}),
        # A reference to no object (pypdf then reads up to the false end).
        (b"/Length 12 0 R /Length FULL", {9: b"<< >>"}),
        (b"/Length 9 0 R /Length 9 0 R /Length FULL", {9: b"CUT"}),
    ],
)
def test_lengths_given_as_references_are_compared_by_what_they_hold(
    lengths: bytes, objects: dict[int, bytes]
) -> None:
    data = samples.pdf_with_stream_lengths(lengths, _HARMLESS, objects=objects)

    error = _error(data)

    assert (error.code, error.details) == _LENGTH_GIVEN_TWICE


@pytest.mark.parametrize(
    ("lengths", "objects"),
    [
        (b"/Length FULL /Length FULL", {}),
        (b"/Length 9 0 R /Length 9 0 R", {9: b"FULL"}),
        (b"/Length 9 0 R /Length FULL", {9: b"FULL"}),
        (b"/Length 9 0 R /Length 10 0 R", {9: b"FULL", 10: b"FULL"}),
    ],
)
def test_one_length_given_twice_is_read_as_a_single_length(
    lengths: bytes, objects: dict[int, bytes]
) -> None:
    # pypdf and viewers read the same bytes: object 7 is seen, whatever it holds.
    harmless = samples.pdf_with_stream_lengths(lengths, _HARMLESS, objects=objects)
    script = samples.pdf_with_stream_lengths(lengths, objects=objects)

    assert inspect_pdf(io.BytesIO(harmless)).pages == 1
    assert (_error(script).code, _error(script).details) == ("pdf_active_content", {"found": "/JS"})


def test_two_lengths_in_a_cross_reference_stream_are_refused() -> None:
    # pypdf reads the table with the first (rereading up to "endstream"), a viewer
    # with the last. Inserted after the object's start: startxref still points at it.
    data = samples.pdf_in_object_streams().replace(
        b"/Root 1 0 R /Length ", b"/Root 1 0 R /Length 1 /Length ", 1
    )
    assert data.count(b"/Length 1 /Length ") == 1

    error = _error(data)

    assert (error.code, error.details) == _LENGTH_GIVEN_TWICE


def test_two_lengths_in_a_dictionary_that_is_no_stream_are_accepted() -> None:
    # /Length means nothing outside a stream: the last value wins, as for any key.
    catalog = b"<< /Type /Catalog /Pages 2 0 R /X << /Length 1 /Length 2 >> >>"

    assert inspect_pdf(io.BytesIO(_classic({**_CATALOG, 1: catalog}))).pages == 1


def test_pages_whose_contents_give_one_length_twice_are_accepted_and_counted() -> None:
    drawing = b"0 0 m 595 842 l S"
    objects = {
        2: b"<< /Type /Pages /Kids [3 0 R 5 0 R 7 0 R] /Count 3 >>",
        **{
            page: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R >>"
            % (page + 1)
            for page in (3, 5, 7)
        },
        4: b"<< /Length 17 /Length 17 >>\nstream\n" + drawing + b"\nendstream",
        6: b"<< /Length 9 0 R /Filter /FlateDecode /Length 9 0 R >>\nstream\n"
        + zlib.compress(drawing)
        + b"\nendstream",
        8: b"<< /Length 17 /Length 10 0 R >>\nstream\n" + drawing + b"\nendstream",
        9: b"%d" % len(zlib.compress(drawing)),
        10: b"17",
    }
    data = _classic({**_CATALOG, **objects})

    assert inspect_pdf(io.BytesIO(data)).pages == 3
    assert uploads.count_pdf_pages(data) == 3  # the wallet's count


def test_an_ordinary_multi_page_pdf_is_unaffected() -> None:
    data = samples.pdf_bytes(3)

    assert inspect_pdf(io.BytesIO(data)).pages == 3
    assert uploads.count_pdf_pages(data) == 3
