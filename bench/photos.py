"""A 12-megapixel phone photo made on the spot, and the naive pipeline to compare with.

The photo has realistic content for a JPEG encoder (gradients plus sensor-like
noise, so it does not compress to nothing: about 4.4 MB, the size of a 12 MP
phone JPEG), quality 90, and EXIF orientation 6 (portrait taken with the phone
held upright), like a photo straight off a phone. Variants: the same photo with
an embedded Display P3 colour profile (what an iPhone or a recent Android
writes; the profile is built here, `display_p3_profile`, not downloaded), and
as HEIC (pillow-heif's x265 encoder), the iPhone's default format.
"""

from __future__ import annotations

import io
import struct

from PIL import Image, ImageChops, ImageOps

WIDTH, HEIGHT = 4032, 3024  # 12.2 MP, the usual 4:3 phone sensor
ORIENTATION_TAG = 0x0112


def phone_photo(
    width: int = WIDTH,
    height: int = HEIGHT,
    quality: int = 90,
    *,
    icc_profile: bytes | None = None,
    heic: bool = False,
) -> bytes:
    gradient = Image.linear_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
    radial = Image.radial_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
    noise = Image.effect_noise((width, height), 20)
    red = ImageChops.add(gradient, noise, scale=1.6, offset=-30)
    green = ImageChops.add(radial, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), scale=1.6)
    blue = ImageChops.add(
        gradient.transpose(Image.Transpose.ROTATE_180), Image.effect_noise((width, height), 12)
    )
    image = Image.merge("RGB", (red, green, blue))
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    exif[0x010F] = "Samsung"  # Make
    exif[0x0110] = "SM-A546E"  # Model
    out = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    if heic:
        import pillow_heif

        pillow_heif.register_heif_opener()
        image.save(out, "HEIF", quality=quality, exif=exif.tobytes(), **extra)
    else:
        image.save(out, "JPEG", quality=quality, exif=exif.tobytes(), **extra)
    return out.getvalue()


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _tag_xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def display_p3_profile() -> bytes:
    """An ICC v2 display profile for Display P3 (matrix + sRGB tone curve), as phones
    embed: primaries adapted to D50 (Bradford), the sRGB parametric curve."""
    description = b"Display P3 (bench)"
    desc = (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(description) + 1)
        + description
        + b"\0"
        + struct.pack(">II", 0, 0)
        + struct.pack(">HB", 0, 0)
        + b"\0" * 67
    )
    # IEC 61966-2-1 curve: Y = (aX + b)^g for X >= d, cX below.
    curve = b"para\0\0\0\0" + struct.pack(">HH", 3, 0)
    curve += b"".join(_s15(v) for v in (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))
    tags = [
        (b"desc", desc),
        (b"cprt", b"text\0\0\0\0No copyright, bench profile\0"),
        (b"wtpt", _tag_xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _tag_xyz(0.515102, 0.241196, -0.001053)),
        (b"gXYZ", _tag_xyz(0.291965, 0.692236, 0.041882)),
        (b"bXYZ", _tag_xyz(0.157153, 0.066574, 0.784073)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    table = struct.pack(">I", len(tags))
    body = b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)  # creation date
        + b"acsp"
        + b"APPL"
        + b"\0" * 4  # flags
        + b"\0" * 8  # manufacturer, model
        + b"\0" * 8  # attributes
        + struct.pack(">I", 0)  # perceptual
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"lcms"
    )
    header += b"\0" * (128 - len(header))
    return header + table + body


def bare_decode(data: bytes) -> Image.Image:
    """What the pipeline is compared with: Pillow decoding every pixel, nothing else."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def naive_pipeline(data: bytes, max_side: int = 2560, thumb_side: int = 320) -> tuple[bytes, bytes]:
    """The obvious code: full decode, exif_transpose, LANCZOS resize, save (+ thumbnail).
    The benchmark gives it the long side process_image writes (equal output)."""
    image: Image.Image = Image.open(io.BytesIO(data))
    image.load()
    image = ImageOps.exif_transpose(image)
    scale = max_side / max(image.size)
    if scale < 1:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    thumbnail = image.copy()
    thumbnail.thumbnail((thumb_side, thumb_side), Image.Resampling.LANCZOS)
    thumb_out = io.BytesIO()
    thumbnail.save(thumb_out, "JPEG", quality=80)
    return out.getvalue(), thumb_out.getvalue()
