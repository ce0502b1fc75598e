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


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small baseline JPEG whose frame header (SOF0) declares `width` x `height`."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 90, 90)).save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_declaring(width: int, height: int) -> bytes:
    """An extended (VP8X) WebP header declaring a `width` x `height` canvas."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
