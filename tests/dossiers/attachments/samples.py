"""Files made in the test: photos as phones take them, PDFs good and bad."""

from __future__ import annotations

import io
import struct
import zlib

import pillow_heif
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

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


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt(user_password="secret", owner_password="owner")
    return _pdf(writer)


HTML_AS_JPG = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"
