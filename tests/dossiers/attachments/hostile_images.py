"""Small images built to cost far more to decode or hold than their size suggests."""

from __future__ import annotations

import io
import struct

from PIL import Image


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """A JPEG as (marker, bytes) pieces; an SOS piece runs to the end of its scan."""
    pieces = [(0xD8, data[:2])]
    position = 2
    while position < len(data):
        assert data[position] == 0xFF
        marker = data[position + 1]
        if marker == 0xD9:
            pieces.append((marker, data[position : position + 2]))
            break
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        end = position + 2 + length
        if marker == 0xDA:
            while data[end] != 0xFF or data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                end += 1
        pieces.append((marker, data[position:end]))
        position = end
    return pieces


def progressive_jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, 128).save(out, "JPEG", progressive=True, quality=90)
    return out.getvalue()


def jpeg_with_repeated_scan(scans: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A progressive greyscale JPEG whose smallest AC scan is repeated until the file
    has `scans` scans in all: libjpeg decodes every one over the whole image."""
    pieces = jpeg_segments(progressive_jpeg(size))
    sos = [piece for marker, piece in pieces if marker == 0xDA]
    assert len(sos) <= scans
    extra = min(sos[1:], key=len)
    body = b"".join(piece for marker, piece in pieces if marker != 0xD9)
    return body + extra * (scans - len(sos)) + b"\xff\xd9"
