"""The processing pipeline on bytes alone: type detection, photos, PDFs."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from backend.errors import ApiError
from dossiers.uploads import (
    UnsupportedFileType,
    detect_kind,
    inspect_pdf,
    process_image,
    target_size,
)
from tests.dossiers.attachments import samples


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _is_red(pixel: tuple[int, ...]) -> bool:
    r, g, b = pixel[:3]
    return r > 200 and g < 60 and b < 60


def _error(call) -> ApiError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (samples.jpeg_bytes(), "image"),
        (samples.png_bytes(), "image"),
        (samples.webp_bytes(), "image"),
        (samples.heic_bytes(), "image"),
        (samples.pdf_bytes(), "pdf"),
        (samples.HTML_AS_JPG, None),
        (b"GIF89a\x01\x00\x01\x00", None),
        (b"", None),
    ],
)
def test_detect_kind_reads_magic_bytes(data: bytes, kind: str | None) -> None:
    assert detect_kind(data[:64]) == kind


def test_jpeg_orientation_is_applied_and_every_metadata_dropped() -> None:
    source = samples.jpeg_bytes((400, 300), orientation=6, gps=True)
    assert _open(source).getexif().get_ifd(samples.GPS_IFD)  # the sample really has GPS

    result = process_image(io.BytesIO(source))

    stored = _open(result.data)
    assert stored.format == "JPEG"
    # Orientation 6: stored landscape, viewed portrait after a clockwise turn, so
    # the red top-left corner of the sensor image ends up top-right.
    assert (result.width, result.height) == (300, 400)
    assert stored.size == (300, 400)
    assert _is_red(stored.getpixel((290, 10)))
    assert not _is_red(stored.getpixel((10, 10)))
    assert dict(stored.getexif()) == {}
    assert "exif" not in stored.info
    assert "icc_profile" not in stored.info
    assert "xmp" not in stored.info
    assert b"Exif\x00\x00" not in result.data
    assert b"PhoneModel" not in result.data
    thumbnail = _open(result.thumbnail)
    assert thumbnail.size == (240, 320)
    assert dict(thumbnail.getexif()) == {}
    assert _is_red(thumbnail.getpixel((236, 3)))


def test_phone_photo_is_reduced_by_a_whole_factor_under_the_long_side_limit() -> None:
    result = process_image(io.BytesIO(samples.jpeg_bytes((4032, 3024))))

    assert (result.width, result.height) == (2016, 1512)
    assert _open(result.data).size == (2016, 1512)
    assert _open(result.thumbnail).size == (320, 240)


def test_wide_image_is_fitted_to_2560_when_a_whole_factor_loses_too_much() -> None:
    result = process_image(io.BytesIO(samples.png_bytes((5200, 2600))))

    assert (result.width, result.height) == (2560, 1280)
    assert _open(result.thumbnail).size == (320, 160)


def test_image_at_the_long_side_limit_keeps_its_size() -> None:
    result = process_image(io.BytesIO(samples.png_bytes((2560, 100))))

    assert (result.width, result.height) == (2560, 100)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((2560, 1920), (2560, 1920)),
        ((2561, 1920), (2560, 1919)),
        ((4032, 3024), (2016, 1512)),
        ((3024, 4032), (1512, 2016)),
        ((6000, 4000), (2000, 1334)),
        ((5200, 2600), (2560, 1280)),
    ],
)
def test_target_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert target_size(*size, 2560) == expected


@pytest.mark.parametrize(
    ("make", "source_format"),
    [
        (samples.png_bytes, "png"),
        (samples.webp_bytes, "webp"),
        (samples.heic_bytes, "heif"),
    ],
)
def test_png_webp_and_heic_become_clean_jpegs(make, source_format: str) -> None:  # type: ignore[no-untyped-def]
    result = process_image(io.BytesIO(make((400, 300))))

    stored = _open(result.data)
    assert result.source_format == source_format
    assert stored.format == "JPEG"
    assert stored.size == (400, 300)
    assert _is_red(stored.getpixel((10, 10)))
    assert dict(stored.getexif()) == {}


def test_transparent_png_is_flattened_on_white() -> None:
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")

    stored = _open(process_image(io.BytesIO(out.getvalue())).data)

    assert stored.getpixel((50, 50)) == (255, 255, 255)


def test_kept_memory_blocks_never_leak_into_the_next_photo(settings) -> None:  # type: ignore[no-untyped-def]
    # The process keeps freed pixel blocks for the next photo (Pillow's arena).
    assert Image.core.get_blocks_max() == settings.ATTACHMENT_IMAGE_BLOCKS_KEPT > 0
    photo = samples.jpeg_bytes((4032, 3024), orientation=6)
    first = process_image(io.BytesIO(photo))
    transparent = io.BytesIO()
    Image.new("RGBA", (2016, 1512), (0, 0, 0, 0)).save(transparent, "PNG")

    flattened = _open(process_image(io.BytesIO(transparent.getvalue())).data)
    again = process_image(io.BytesIO(photo))

    assert flattened.getextrema() == ((255, 255), (255, 255), (255, 255))
    assert (again.data, again.thumbnail) == (first.data, first.thumbnail)


def test_decompression_bomb_header_is_refused_before_decoding() -> None:
    bomb = samples.png_header_only(50_000, 50_000)
    assert len(bomb) < 200

    error = _error(lambda: process_image(io.BytesIO(bomb)))

    assert (error.status, error.code) == (422, "image_too_large")


def test_pixel_limit_boundary(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ATTACHMENT_MAX_PIXELS = 100 * 100

    assert process_image(io.BytesIO(samples.png_bytes((100, 100)))).width == 100
    error = _error(lambda: process_image(io.BytesIO(samples.png_header_only(100, 101))))
    assert (error.status, error.code) == (422, "image_too_large")
    assert error.details == {"width": 100, "height": 101, "max_pixels": 10_000, "max_side": 65_535}


@pytest.mark.parametrize(
    "data",
    [
        samples.HTML_AS_JPG,
        b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>",  # JPEG magic, no image
        samples.jpeg_bytes()[:300],  # truncated
        samples.png_bytes()[:40],
        samples.pdf_bytes(),  # a PDF is not an image
    ],
)
def test_anything_that_does_not_decode_is_an_unsupported_file_type(data: bytes) -> None:
    with pytest.raises(UnsupportedFileType) as caught:
        process_image(io.BytesIO(data))
    assert (caught.value.status, caught.value.code) == (415, "unsupported_file_type")


def test_pdf_pages_are_counted() -> None:
    assert inspect_pdf(io.BytesIO(samples.pdf_bytes(3))).pages == 3


def test_pdf_page_limit_boundary() -> None:
    assert inspect_pdf(io.BytesIO(samples.pdf_bytes(50))).pages == 50

    error = _error(lambda: inspect_pdf(io.BytesIO(samples.pdf_bytes(51))))

    assert (error.status, error.code) == (422, "pdf_too_many_pages")
    assert error.details == {"pages": 51, "max_pages": 50}


@pytest.mark.parametrize(
    ("make", "found"),
    [
        (samples.pdf_with_javascript_open_action, "/JS"),
        (samples.pdf_with_javascript_name_tree, "/JavaScript"),
        (samples.pdf_with_launch_action, "/Launch"),
        (samples.pdf_with_embedded_file, "/EmbeddedFiles"),
        (samples.pdf_with_xfa_script, "/XFA"),
        (samples.pdf_with_submit_on_open, "/SubmitForm"),
        (samples.pdf_with_import_data_on_page_open, "/ImportData"),
        (samples.pdf_with_uri_on_open, "/URI"),
        (samples.pdf_with_uri_chained_after_open, "/URI"),
        (samples.pdf_with_uri_on_page_open, "/URI"),
        (samples.pdf_with_remote_go_to, "/GoToR"),
        (samples.pdf_with_embedded_go_to_link, "/GoToE"),
        (samples.pdf_with_script_in_object_stream, "/JS"),
        (samples.pdf_with_shadowed_open_action, "/Launch"),
    ],
)
def test_pdf_with_active_content_is_refused(make, found: str) -> None:  # type: ignore[no-untyped-def]
    error = _error(lambda: inspect_pdf(io.BytesIO(make())))

    assert (error.status, error.code) == (422, "pdf_active_content")
    assert error.details == {"found": found}


@pytest.mark.parametrize("make", [samples.pdf_with_link, samples.pdf_in_object_streams])
def test_pdf_with_a_clickable_link_or_object_streams_is_accepted(make) -> None:  # type: ignore[no-untyped-def]
    assert inspect_pdf(io.BytesIO(make())).pages == 1


def test_pdf_that_does_not_parse_is_refused() -> None:
    error = _error(lambda: inspect_pdf(io.BytesIO(b"%PDF-1.7\n<html>not a pdf</html>")))

    assert (error.status, error.code) == (422, "pdf_unreadable")


def test_password_protected_pdf_is_refused() -> None:
    error = _error(lambda: inspect_pdf(io.BytesIO(samples.encrypted_pdf())))

    assert (error.status, error.code) == (422, "pdf_encrypted")


# --- Colour profiles ---------------------------------------------------------------

# Display P3 to sRGB on linear values (both D65; IEC 61966-2-1 and SMPTE EG 432-1).
_P3_TO_SRGB = (
    (1.2249, -0.2247, 0.0),
    (-0.0420, 1.0419, 0.0),
    (-0.0197, -0.0786, 1.0979),
)


def _linear(value: int) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _encoded(value: float) -> int:
    v = min(1.0, max(0.0, value))
    v = v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
    return round(v * 255)


def _p3_as_srgb(pixel: tuple[int, int, int]) -> tuple[int, ...]:
    linear = [_linear(channel) for channel in pixel]
    return tuple(
        _encoded(sum(weight * value for weight, value in zip(row, linear, strict=True)))
        for row in _P3_TO_SRGB
    )


def _flat_jpeg(colour: tuple[int, int, int], *, icc_profile: bytes | None) -> bytes:
    out = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    Image.new("RGB", (4032, 3024), colour).save(out, "JPEG", quality=95, **extra)
    return out.getvalue()


P3_RED = (200, 60, 40)  # a red a phone writes in Display P3, inside sRGB's gamut


def test_photo_with_a_display_p3_profile_is_converted_to_srgb() -> None:
    from bench.photos import display_p3_profile

    expected = _p3_as_srgb(P3_RED)  # about (218, 42, 23): redder than the raw numbers
    assert max(abs(a - b) for a, b in zip(expected, P3_RED, strict=True)) > 10

    result = process_image(io.BytesIO(_flat_jpeg(P3_RED, icc_profile=display_p3_profile())))

    stored = _open(result.data)
    assert stored.size == (2016, 1512)  # converted after the reduced decode
    assert "icc_profile" not in stored.info  # sRGB, the web's default: no profile kept
    for image in (stored, _open(result.thumbnail)):
        pixel = image.getpixel((image.width // 2, image.height // 2))
        assert max(abs(a - b) for a, b in zip(pixel, expected, strict=True)) <= 3, pixel


def test_the_same_profile_converts_every_photo_that_embeds_it() -> None:
    """The transform is kept per profile: a second photo gets the same conversion."""
    from bench.photos import display_p3_profile

    profile = display_p3_profile()
    expected = _p3_as_srgb(P3_RED)
    for _ in range(2):
        stored = _open(process_image(io.BytesIO(_flat_jpeg(P3_RED, icc_profile=profile))).data)
        pixel = stored.getpixel((100, 100))
        assert max(abs(a - b) for a, b in zip(pixel, expected, strict=True)) <= 3, pixel


def test_photo_without_a_profile_keeps_its_values() -> None:
    stored = _open(process_image(io.BytesIO(_flat_jpeg(P3_RED, icc_profile=None))).data)

    pixel = stored.getpixel((100, 100))
    assert max(abs(a - b) for a, b in zip(pixel, P3_RED, strict=True)) <= 3, pixel


def test_photo_with_an_unusable_profile_keeps_its_values() -> None:
    broken = b"\0\0\0\x80" + b"not an ICC profile" * 8

    stored = _open(process_image(io.BytesIO(_flat_jpeg(P3_RED, icc_profile=broken))).data)

    pixel = stored.getpixel((100, 100))
    assert max(abs(a - b) for a, b in zip(pixel, P3_RED, strict=True)) <= 3, pixel


def test_the_scan_of_every_object_skips_the_bodies_the_walk_already_read() -> None:
    # The walk from the trailer reads every object the file uses; the scan of the raw
    # bytes then reads only the others: a body at another offset than the one the
    # cross-reference table gives (the shadowed open action's script), an unlisted
    # object, the object streams. (A signed result's signature was parsed twice.)
    from dossiers.uploads import _Budget, _every_object, _Reader, _Walk

    def left_to_parse(data: bytes) -> list[Any]:
        reader = _Reader(data, _Budget())
        walk = _Walk(reader._budget)
        assert walk(reader.trailer) is None
        return list(_every_object(reader, data, walk.read))

    clean = samples.pdf_bytes(3)
    everything = list(_every_object(_Reader(clean, _Budget()), clean, set()))
    assert len(everything) >= 5
    assert left_to_parse(clean) == []

    shadowed = samples.pdf_with_shadowed_open_action()
    reader = _Reader(shadowed, _Budget())
    walk = _Walk(reader._budget)
    walk(reader.trailer)
    assert (4, 0) in walk.read  # the harmless body, where the table points
    bodies = list(_every_object(reader, shadowed, walk.read))
    assert {"/S": "/Launch", "/F": "cmd.exe"} in [dict(body) for body in bodies]
