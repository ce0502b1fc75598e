"""What the PDF check (`dossiers.uploads`) relies on in pypdf beyond its documented API.

pypdf 7.1.0 (requirements.lock) has no public equivalent for any of these. Each test
names the internal it holds: when a pypdf upgrade renames or removes one, the test
fails with that name instead of the check quietly reading less than it should (a
reader override pypdf stops calling, a warning it stops giving). What has a public
equivalent is used through it: `read_object` (`pypdf.generic.__all__`); white-space
before an object is skipped by the check itself, not with `pypdf._utils`."""

from __future__ import annotations

import ast
import io
import zlib
from pathlib import Path
from typing import Any
from unittest import mock

import pypdf.generic
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from pypdf.generic import DictionaryObject, IndirectObject, StreamObject, TextStringObject

from dossiers import uploads
from dossiers.uploads import _Budget, _PypdfReports, _Reader
from tests.dossiers.attachments import samples
from tests.dossiers.attachments.test_pdf_hostile import _CATALOG, _classic


def _reader(data: bytes) -> tuple[_Reader, _PypdfReports]:
    reports = _PypdfReports()
    token = uploads._PYPDF_REPORTS.set(reports)
    try:
        reader = _Reader(data, _Budget())
        assert len(reader.pages) >= 1
    finally:
        uploads._PYPDF_REPORTS.reset(token)
    return reader, reports


def test_the_check_imports_nothing_from_pypdfs_private_modules() -> None:
    tree = ast.parse(Path(uploads.__file__).read_text())
    modules = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pypdf")
    ]

    assert [name for name in modules if any(part.startswith("_") for part in name.split("."))] == []
    assert "read_object" in pypdf.generic.__all__, "pypdf.generic no longer exports read_object"


def test_the_cross_reference_tables_are_reader_attributes() -> None:
    classic, _ = _reader(_classic(_CATALOG))
    compressed, _ = _reader(samples.pdf_in_object_streams())

    assert isinstance(classic.xref.get(0), dict), "PdfReader.xref: {generation: {number: offset}}"
    assert isinstance(classic.xref[0].get(1), int), "PdfReader.xref: {generation: {number: offset}}"
    assert isinstance(classic.xref_free_entry, dict), "PdfReader.xref_free_entry is gone"
    assert compressed.xref_objStm.get(2, (None,))[0] is not None, (
        "PdfReader.xref_objStm: {number: (object stream number, index)}"
    )
    assert (0, 1) in classic.resolved_objects, "PdfReader.resolved_objects: {(generation, number)}"


def test_pypdf_resolves_through_the_readers_get_object_and_cache() -> None:
    reader, _ = _reader(_classic({**_CATALOG, 4: b"<< /A 1 >>"}))

    with mock.patch.object(_Reader, "get_object", autospec=True, side_effect=_Reader.get_object):
        IndirectObject(4, 0, reader).get_object()
        resolved = _Reader.get_object.call_count  # type: ignore[attr-defined]

    assert resolved == 1, "IndirectObject.get_object no longer calls PdfReader.get_object"
    reader.cache_indirect_object(0, 9, DictionaryObject())
    assert (0, 9) in reader.resolved_objects, "PdfReader.cache_indirect_object is gone"


def test_compressed_objects_are_read_through_the_readers_own_method() -> None:
    # Otherwise pypdf parses every member of an object stream at once, outside the
    # check's budget.
    with mock.patch.object(
        _Reader,
        "_get_object_from_stream",
        autospec=True,
        side_effect=_Reader._get_object_from_stream,
    ) as own:
        _reader(samples.pdf_in_object_streams())

    assert own.call_count >= 2, (
        "pypdf's get_object no longer calls PdfReader._get_object_from_stream: "
        "_Reader's bounded reading of object streams is bypassed"
    )


def test_a_streams_stored_bytes_are_its_data_attribute() -> None:
    stored = zlib.compress(b"0 0 m 595 842 l S")
    data = _classic(
        {
            **_CATALOG,
            4: b"<< /Filter /FlateDecode /Length %d >>\nstream\n" % len(stored)
            + stored
            + b"\nendstream",
        }
    )
    reader, _ = _reader(data)

    stream = reader.get_object(4)

    assert isinstance(stream, StreamObject)
    assert stream._data == stored, "StreamObject._data no longer holds the stored bytes"


def test_the_encryption_of_a_file_that_opens_without_a_password() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": "Giấy khai sinh"})
    writer.encrypt(user_password="", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    reader = _Reader(out.getvalue(), _Budget())

    assert reader._override_encryption is False, "PdfReader._override_encryption is gone"
    encryption = reader._encryption
    assert encryption is not None, "PdfReader._encryption is gone"
    assert reader.decrypt("")
    assert encryption.is_decrypted(), "Encryption.is_decrypted is gone"
    info = reader.trailer.raw_get("/Info")
    assert isinstance(info, IndirectObject)
    raw = _classic_body(out.getvalue(), info.idnum, reader)
    title = encryption.decrypt_object(raw, info.idnum, info.generation)["/Title"]
    assert title == TextStringObject("Giấy khai sinh"), "Encryption.decrypt_object is gone"


def _classic_body(data: bytes, number: int, reader: _Reader) -> DictionaryObject:
    source = io.BytesIO(data)
    body = uploads._parse_at(source, _body_start(data, number, reader), reader, _Budget())
    assert isinstance(body, DictionaryObject)
    return body


def _body_start(data: bytes, number: int, reader: _Reader) -> int:
    match = uploads._LISTED_HEADER.match(data, reader.xref[0][number])
    assert match is not None
    return match.end()


def test_pypdf_reports_a_key_given_twice_and_a_dropped_table_entry() -> None:
    # Logged as warnings only: the messages and their arguments are what the check
    # collects (`_collect`).
    catalog = b"<< /Type /Catalog /Pages 2 0 R /Lang (vi) /Lang (en) >>"
    data = _classic({**_CATALOG, 1: catalog, 4: b"<< >>"}, headers={4: b"4 %c\n0 obj\n"})

    _, reports = _reader(data)

    assert reports.duplicate_keys == ["/Lang"], (
        "pypdf no longer logs 'Multiple definitions in dictionary' (args: key) on "
        "pypdf.generic._data_structures: keys given twice go unseen"
    )
    assert [entry[1:] for entry in reports.dropped_entries] == [(4, 0)], (
        "pypdf no longer logs 'Ignoring wrong pointing object' (args: offset, id, gen) on "
        "pypdf._reader: dropped entries go unscanned"
    )


def test_the_readers_own_attributes_are_not_pypdfs() -> None:
    # _Reader keeps its state in attributes of its own: one pypdf starts using too
    # would be overwritten by the other without a word.
    ours = {"_data", "_source", "_budget", "_first_headers", "_streams", "repeated_keys"}
    plain = PdfReader(io.BytesIO(_classic(_CATALOG)))
    len(plain.pages)

    assert ours & set(vars(plain)) == set(), "PdfReader now sets an attribute _Reader uses"


def _stream_as_pypdf_reads_it(body: bytes) -> tuple[Any, _PypdfReports]:
    """Object 4 (`body`) read by pypdf's parser where the table puts it: the object
    or the pypdf error it raised, and what pypdf reported meanwhile."""
    data = _classic({**_CATALOG, 4: body})
    reader, _ = _reader(data)
    source = io.BytesIO(data)
    source.seek(_body_start(data, 4, reader))
    uploads._skip_whitespace(source)
    reports = _PypdfReports()
    token = uploads._PYPDF_REPORTS.set(reports)
    try:
        found: Any = pypdf.generic.read_object(source, reader)
    except PyPdfError as error:
        found = error
    finally:
        uploads._PYPDF_REPORTS.reset(token)
    return found, reports


def test_pypdf_cuts_a_stream_with_the_first_of_two_lengths() -> None:
    # What `_stream_lengths_differ` is for: viewers cut with the last one. A first
    # length landing on no "endstream" (7) is reread up to the first one there is.
    lands = b"<< /Length 3 /Length 21 >>\nstream\nabc\nendstream\ndefgh\nendstream"
    rereads = b"<< /Length 7 /Length 21 >>\nstream\nabc\nendstream\ndefgh\nendstream"

    first, reports = _stream_as_pypdf_reads_it(lands)
    reread, _ = _stream_as_pypdf_reads_it(rereads)

    assert isinstance(first, StreamObject)
    assert first._data == b"abc", "pypdf no longer cuts a stream with its first /Length"
    assert reports.duplicate_keys == ["/Length"], "a /Length given twice goes unreported"
    assert isinstance(reread, StreamObject)
    assert reread._data == b"abc", (
        "pypdf no longer rereads up to the first 'endstream' when /Length lands elsewhere"
    )


def test_pypdf_reports_a_length_given_twice_before_it_fails_on_the_first() -> None:
    # The scan reads such a stream's lengths again even though pypdf gave up on it:
    # the report must come from the dictionary, before the data is read.
    body = b"<< /Length 99999999999 /Length 3 >>\nstream\nabc\nendstream"

    found, reports = _stream_as_pypdf_reads_it(body)

    assert isinstance(found, PyPdfError), "pypdf now reads a stream beyond its length limit"
    assert reports.duplicate_keys == ["/Length"], (
        "pypdf no longer reports a key given twice before reading the stream's data"
    )


def test_pypdf_reports_a_dictionary_it_reads_only_in_part() -> None:
    # Its "return partial data" is logged as "%(exception)s" only: the check collects
    # it (`_PypdfReports.partial_reads`) and refuses the file.
    found, reports = _stream_as_pypdf_reads_it(b"<< /Type /Action /X } /S /Launch >>")

    assert found == {"/Type": "/Action"}, "pypdf no longer keeps the keys before a broken value"
    assert reports.partial_reads == 1, (
        "pypdf no longer logs '%(exception)s' on pypdf.generic._data_structures when it "
        "returns a dictionary read in part: such objects go unrefused"
    )
