"""Photos that would cost far more to decode or keep than their size suggests."""

from __future__ import annotations

import gc
import io
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation
from PIL import Image, ImageFile

from backend.errors import ApiError
from dossiers.models import Attachment, Dossier
from dossiers.uploads import UnsupportedFileType, jpeg_scan_count, process_image
from tests.conftest import ApiClient
from tests.dossiers.attachments import samples
from tests.dossiers.attachments.conftest import stored_files, upload
from tests.dossiers.attachments.hostile_images import (
    jpeg_declaring,
    jpeg_segments,
    jpeg_with_repeated_scan,
    progressive_jpeg,
    webp_declaring,
)

P3_RED = (200, 60, 40)  # as a phone writes it in Display P3: converted, it is redder


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> list[Image.Image]:
    """Pillow's decoding entry point, recorded: a refusal must come before it."""
    loaded: list[Image.Image] = []
    original = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> Any:
        loaded.append(self)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return loaded


def test_scans_are_counted_without_decoding() -> None:
    libjpeg_progressive = io.BytesIO()
    samples.marked_image((64, 48)).save(libjpeg_progressive, "JPEG", progressive=True)

    assert jpeg_scan_count(samples.jpeg_bytes(), stop_above=32) == 1  # baseline, with EXIF
    assert jpeg_scan_count(libjpeg_progressive.getvalue(), stop_above=32) == 10
    assert jpeg_scan_count(jpeg_with_repeated_scan(500), stop_above=10_000) == 500
    assert jpeg_scan_count(jpeg_with_repeated_scan(500), stop_above=32) == 33  # stops early


def test_millions_of_empty_segments_count_as_too_many_scans() -> None:
    comments = b"\xff\xd8" + b"\xff\xfe\x00\x02" * 5_000 + progressive_jpeg()[2:]

    assert jpeg_scan_count(comments, stop_above=32) == 33


def test_marker_bytes_inside_segments_or_junk_between_them_do_not_hide_a_scan() -> None:
    commented = io.BytesIO()
    samples.marked_image((64, 48)).save(commented, "JPEG", comment=b"\xff\xda" * 20)
    assert jpeg_scan_count(commented.getvalue(), stop_above=32) == 1

    # libjpeg skips junk (with a warning) and fill 0xFFs before a marker; so does the count.
    pieces = jpeg_segments(jpeg_with_repeated_scan(40))
    padded = b"".join(
        (b"junk\xff\xff" + piece if marker == 0xDA else piece) for marker, piece in pieces
    )
    assert jpeg_scan_count(padded, stop_above=100) == 40


def test_a_jpeg_with_more_scans_than_allowed_is_refused_before_decoding(
    settings: Any, no_decoding: list[Image.Image]
) -> None:
    settings.ATTACHMENT_JPEG_MAX_SCANS = 40

    accepted = process_image(io.BytesIO(jpeg_with_repeated_scan(40)))
    assert (accepted.width, accepted.height) == (64, 48)
    assert no_decoding != []
    no_decoding.clear()
    with pytest.raises(UnsupportedFileType) as caught:
        process_image(io.BytesIO(jpeg_with_repeated_scan(41)))
    assert (caught.value.status, caught.value.code) == (415, "unsupported_file_type")
    assert no_decoding == []  # the refused file was never decoded


def test_the_default_limit_takes_progressive_photos(settings: Any) -> None:
    assert settings.ATTACHMENT_JPEG_MAX_SCANS == 32
    assert process_image(io.BytesIO(progressive_jpeg())).source_format == "jpeg"


@pytest.mark.django_db
def test_an_upload_with_thousands_of_scans_is_refused_and_nothing_is_stored(
    owner_api: ApiClient, dossier: Dossier, media_root: Path, no_decoding: list[Image.Image]
) -> None:
    data = jpeg_with_repeated_scan(2_000)
    assert len(data) < 40_000

    response = upload(owner_api, dossier, data)

    assert response.status_code == 415, response
    assert response.json()["code"] == "unsupported_file_type"
    assert not Attachment.objects.filter(dossier=dossier).exists()
    assert stored_files(media_root) == []
    assert no_decoding == []


def test_a_thin_image_is_refused_from_its_header_with_its_real_size(
    no_decoding: list[Image.Image],
) -> None:
    # 40 megapixels, within the pixel budget, but a row pointer for each of 40 million
    # rows in every copy: 1.8 GB to decode.
    thin = samples.png_header_only(1, 40_000_000)

    with pytest.raises(ApiError) as caught:
        process_image(io.BytesIO(thin))

    assert (caught.value.status, caught.value.code) == (422, "image_too_large")
    assert caught.value.details == {
        "width": 1,
        "height": 40_000_000,
        "max_pixels": 40_000_000,
        "max_side": 65_535,
    }
    assert no_decoding == []


@pytest.mark.parametrize("size", [(101, 10), (10, 101)])
def test_side_limit_boundary(settings: Any, size: tuple[int, int]) -> None:
    settings.ATTACHMENT_MAX_SIDE_PIXELS = 100

    assert process_image(io.BytesIO(samples.png_bytes((100, 10)))).width == 100
    assert process_image(io.BytesIO(samples.png_bytes((10, 100)))).height == 100
    with pytest.raises(ApiError) as caught, translation.override("en"):
        process_image(io.BytesIO(samples.png_header_only(*size)))
    assert caught.value.code == "image_too_large"
    assert (caught.value.details["width"], caught.value.details["height"]) == size
    assert caught.value.message == "The image is too long or too wide (at most 100 pixels a side)."


def _small_jpeg(colour: tuple[int, int, int], icc_profile: bytes) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG", quality=95, icc_profile=icc_profile)
    return out.getvalue()


def test_colour_profiles_are_not_kept_in_memory_after_the_upload() -> None:
    # Each upload embeds another junk profile; what the process keeps afterwards must
    # not grow with them (a cache keyed on the profile's bytes kept them all).
    profiles = [bytes([n]) * 16 + os.urandom(300_000) for n in range(4)]
    process_image(io.BytesIO(_small_jpeg(P3_RED, profiles[0])))  # warm up
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for profile in profiles[1:]:
            process_image(io.BytesIO(_small_jpeg(P3_RED, profile)))
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 100_000, after - before  # three profiles are 900 KB


def test_a_profile_over_the_size_limit_is_not_used(settings: Any) -> None:
    from bench.photos import display_p3_profile

    profile = display_p3_profile()
    settings.ATTACHMENT_ICC_PROFILE_MAX_BYTES = len(profile) - 1

    stored = Image.open(io.BytesIO(process_image(io.BytesIO(_small_jpeg(P3_RED, profile))).data))

    pixel = stored.getpixel((32, 24))
    assert max(abs(a - b) for a, b in zip(pixel, P3_RED, strict=True)) <= 3, pixel  # as sRGB
    settings.ATTACHMENT_ICC_PROFILE_MAX_BYTES = len(profile)
    converted = Image.open(
        io.BytesIO(process_image(io.BytesIO(_small_jpeg(P3_RED, profile))).data)
    ).getpixel((32, 24))
    assert max(abs(a - b) for a, b in zip(converted, P3_RED, strict=True)) > 10, converted


@pytest.mark.parametrize(
    "make",
    [samples.png_header_only, jpeg_declaring, webp_declaring],
    ids=["png", "jpeg", "webp"],
)
def test_a_bomb_refused_at_open_still_names_its_size(make: Any) -> None:
    # Over twice the pixel limit Pillow refuses the file inside Image.open, before
    # handing over the image whose size the refusal names.
    with pytest.raises(ApiError) as caught:
        process_image(io.BytesIO(make(12_000, 9_000)))

    assert caught.value.code == "image_too_large"
    assert caught.value.details == {
        "width": 12_000,
        "height": 9_000,
        "max_pixels": 40_000_000,
        "max_side": 65_535,
    }
