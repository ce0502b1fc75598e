"""A 12-megapixel phone photo made on the spot, and the naive pipeline to compare with.

The photo has realistic content for a JPEG encoder (gradients plus sensor-like
noise, so it does not compress to nothing: about 4.4 MB, the size of a 12 MP
phone JPEG), quality 90, and EXIF orientation 6 (portrait taken with the phone
held upright), like a photo straight off a phone.
"""

from __future__ import annotations

import io

from PIL import Image, ImageChops, ImageOps

WIDTH, HEIGHT = 4032, 3024  # 12.2 MP, the usual 4:3 phone sensor
ORIENTATION_TAG = 0x0112


def phone_photo(width: int = WIDTH, height: int = HEIGHT, quality: int = 90) -> bytes:
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
    image.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def bare_decode(data: bytes) -> Image.Image:
    """What the pipeline is compared with: Pillow decoding every pixel, nothing else."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def naive_pipeline(data: bytes, max_side: int = 2560, thumb_side: int = 320) -> tuple[bytes, bytes]:
    """The obvious code: full decode, exif_transpose, LANCZOS resize, save (+ thumbnail)."""
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
