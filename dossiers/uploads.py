"""What an uploaded file really is, and what we keep of it.

Pure functions on bytes and file objects (no database, no storage), so a
benchmark or a worker can call them directly:

- `detect_kind(head)` decides the type from magic bytes only (never the name or
  the client's Content-Type);
- `process_image(fileobj)` decodes, checks the pixel budget *before* decoding,
  applies the EXIF orientation, drops every piece of metadata and re-encodes a
  JPEG plus a thumbnail;
- `inspect_pdf(fileobj)` parses a PDF, counts its pages and refuses active
  content (JavaScript, XFA forms, launch/submit/import/remote go-to actions, links
  that open by themselves, embedded files), wherever the object sits: reachable from
  the catalogue, in an object stream, or only in the file's bytes. A key given twice
  in one dictionary is read as PDF viewers read it (the last value wins) and every
  one of its values is checked; a stream whose /Length is given twice with
  different values is refused (see `_stream_lengths_differ`), as is a file with an
  object pypdf cannot read, or reads only in part (`_PypdfReports`), or with a
  comment before a stream's data (`_comment_before_stream`): where pypdf and viewers
  would read different things, the file is refused rather than guessed at.

Every refusal is an `ApiError` with a stable code.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import math
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Generator, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import IO, Any, cast

import pillow_heif
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageCms
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError, PyPdfError
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NullObject,
    NumberObject,
    StreamObject,
    read_object,
)

from backend.errors import ApiError, Unprocessable

pillow_heif.register_heif_opener()

# Pillow refuses (at open, from the header alone) anything above twice this and
# warns above it; `process_image` checks the exact limit right after opening.
Image.MAX_IMAGE_PIXELS = settings.ATTACHMENT_MAX_PIXELS
# Freed pixel blocks kept for the next photo (Pillow's arena, process-wide): about
# 15 % of a 12 MP photo's CPU time is the kernel zeroing fresh pages otherwise.
Image.core.set_blocks_max(settings.ATTACHMENT_IMAGE_BLOCKS_KEPT)

IMAGE = "image"
PDF = "pdf"

# Detected format -> (kind, Pillow format name).
_IMAGE_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heif": "HEIF"}
_HEIF_BRANDS = {
    b"heic",
    b"heix",
    b"heim",
    b"heis",
    b"hevc",
    b"hevx",
    b"hevm",
    b"hevs",
    b"mif1",
    b"msf1",
}
HEAD_BYTES = 64

_ORIENTATION_TAG = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SRGB = ImageCms.createProfile("sRGB")


class UnsupportedFileType(ApiError):
    status = 415

    def __init__(self) -> None:
        super().__init__(
            "unsupported_file_type",
            _("Only JPEG, PNG, HEIC/HEIF, WebP photos and PDF documents are accepted."),
        )


def image_too_large(width: int, height: int, limit: int, max_side: int) -> Unprocessable:
    if max(width, height) > max_side:
        message = _("The image is too long or too wide (at most %(side)s pixels a side).") % {
            "side": max_side
        }
    else:
        message = _("The image has too many pixels (at most %(limit)s megapixels).") % {
            "limit": f"{limit / 1_000_000:g}"
        }
    return Unprocessable(
        "image_too_large",
        message,
        details={"width": width, "height": height, "max_pixels": limit, "max_side": max_side},
    )


def detect_format(head: bytes) -> str | None:
    """`jpeg`, `png`, `webp`, `heif` or `pdf` from the first bytes; None otherwise."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "heif"
    if head.startswith(b"%PDF-"):
        return "pdf"
    return None


def detect_kind(head: bytes) -> str | None:
    """`image` or `pdf` (an Attachment.Kind value) from the magic bytes; None otherwise."""
    detected = detect_format(head)
    if detected is None:
        return None
    return PDF if detected == "pdf" else IMAGE


@dataclass(frozen=True)
class ProcessedImage:
    data: bytes  # the re-encoded JPEG, no metadata at all
    thumbnail: bytes  # JPEG, long side about `thumbnail_side`
    width: int
    height: int
    source_format: str  # jpeg | png | webp | heif


@dataclass(frozen=True)
class PdfInfo:
    pages: int


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height
    scale = max_side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The stored size of a `width` x `height` photo: long side at most `max_side`.

    When dividing by a whole number still keeps at least 3/4 of `max_side`
    (a 4032 x 3024 phone photo becomes 2016 x 1512), that is the size: JPEG
    decodes straight to it (draft mode) and other formats get a cheap box
    reduction, instead of a Lanczos pass over all twelve megapixels.
    """
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height
    factor = math.ceil(long_side / max_side)
    if long_side / factor >= max_side * 0.75:
        return math.ceil(width / factor), math.ceil(height / factor)
    return _fit(width, height, max_side)


def _shrink(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    if image.size == target:
        return image
    for factor in range(2, 9):
        if (math.ceil(image.width / factor), math.ceil(image.height / factor)) == target:
            return image.reduce(factor)
    # reducing_gap: first shrink by a whole factor (box filter, fast), then finish
    # with Lanczos on the smaller image.
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _to_rgb(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit greyscale: scale down to 8 bits instead of clipping to white.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    return image if image.mode == "RGB" else image.convert("RGB")


# Transforms kept per embedded profile: phones embed the same few profiles (an
# iPhone's Display P3 in every photo), and building a transform (parsing the
# profile, joining the curves and the matrix) costs 2-3 ms. Keyed on the profile's
# SHA-256, not its bytes: a key made of the bytes kept up to 16 uploaded profiles
# (10 MB each, junk included) alive in every process.
_TRANSFORMS_KEPT = 16
_transforms: OrderedDict[bytes, ImageCms.ImageCmsTransform | None] = OrderedDict()
_transforms_lock = threading.Lock()


def _build_srgb_transform(icc_profile: bytes) -> ImageCms.ImageCmsTransform | None:
    """The RGB to sRGB transform of an embedded profile; None when it is unusable.

    NOCACHE: LittleCMS then keeps no last-pixel cache in the transform, so one
    transform can be applied by several request threads at once; the speed is the
    same (8-bit matrix-shaper transforms are precomputed tables either way).
    """
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        return ImageCms.buildTransform(source, _SRGB, "RGB", "RGB", flags=ImageCms.Flags.NOCACHE)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _srgb_transform(icc_profile: bytes) -> ImageCms.ImageCmsTransform | None:
    """The kept transform of this profile (built on first use); None when unusable.

    A profile over `ATTACHMENT_ICC_PROFILE_MAX_BYTES` is not read at all and the
    pixels are taken as sRGB, as for any unusable profile: phones and cameras embed a
    few KB (matrix and curves), so a bigger one is junk or a print profile, and
    refusing the photo for it would fail the citizen for nothing we need.
    """
    if len(icc_profile) > settings.ATTACHMENT_ICC_PROFILE_MAX_BYTES:
        return None
    key = hashlib.sha256(icc_profile).digest()
    with _transforms_lock:
        if key in _transforms:
            _transforms.move_to_end(key)
            return _transforms[key]
    transform = _build_srgb_transform(icc_profile)  # outside the lock: 2-3 ms
    with _transforms_lock:
        _transforms[key] = transform
        while len(_transforms) > _TRANSFORMS_KEPT:
            _transforms.popitem(last=False)
    return transform


def _as_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert from an embedded colour profile (an iPhone's Display P3) to sRGB, so
    the colours stay right once the profile is dropped with the other metadata.

    Runs on the reduced frame (a quarter of a phone photo's pixels) and converts
    it in place: `image` must be the pipeline's own RGB frame, not shared.
    """
    if not icc_profile:
        return image
    transform = _srgb_transform(bytes(icc_profile))
    if transform is None:
        return image  # an unusable profile: keep the pixels as they are
    try:
        ImageCms.applyTransform(image, transform, inPlace=True)
    except (ImageCms.PyCMSError, ValueError):
        return image  # LittleCMS refused it: the pixels are left as they were
    return image


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # No exif=, icc_profile=, comment=: Pillow writes none of them unless asked.
    image.save(out, "JPEG", quality=quality, subsampling="4:2:0")
    return out.getvalue()


# The end of a JPEG scan's entropy-coded data: 0xFF followed by a marker, i.e. not a
# stuffed zero, not a fill 0xFF (the last one of a run matches) and not a restart
# marker (those stay inside a scan). One 0xFF and a class, so `re` searches at C speed
# (about 5 ms for 10 MB of photo data; a leading `\xff+` is twenty times slower).
_END_OF_SCAN = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")
_STANDALONE_MARKERS = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: no length field
# Segments walked at most: a photo has a few dozen (a progressive one with every scan
# its own tables, about a hundred). Millions of empty comment segments would cost
# seconds of Python here and in Pillow's own marker parser.
_JPEG_SEGMENTS_MAX = 4096


def jpeg_scan_count(data: bytes, stop_above: int) -> int:
    """The scans (SOS segments) of the JPEG image in `data`, up to its EOI, found by
    walking the segments and skipping each scan's entropy-coded data (no decoding).

    libjpeg decodes every scan over the whole image and has no limit of its own: a
    progressive JPEG repeating one tiny scan thousands of times costs seconds to
    minutes of CPU. Counting stops once above `stop_above`; a file with more than
    `_JPEG_SEGMENTS_MAX` segments counts as above it. Bytes that are not a marker
    where one is due are skipped to the next marker, as libjpeg does, so every scan
    libjpeg would read is counted.
    """
    scans = segments = 0
    position = 2  # after SOI
    while position + 1 < len(data) and scans <= stop_above:
        segments += 1
        if segments > _JPEG_SEGMENTS_MAX:
            return stop_above + 1
        if data[position] != 0xFF or data[position + 1] in (0x00, 0xFF):
            found = _END_OF_SCAN.search(data, position + 1)
            if found is None:
                break
            position = found.start()
            continue
        marker = data[position + 1]
        if marker == 0xD9:  # EOI
            break
        if marker in _STANDALONE_MARKERS:
            position += 2
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        position += 2 + max(length, 2)
        if marker == 0xDA:  # SOS: its header, then entropy-coded data to the next marker
            scans += 1
            found = _END_OF_SCAN.search(data, position)
            if found is None:
                break
            position = found.start()
    return scans


def _webp_header_size(head: bytes) -> tuple[int, int] | None:
    """The canvas size a WebP's first 30 bytes declare (lossy, lossless or extended)."""
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        return (
            int.from_bytes(head[26:28], "little") & 0x3FFF,
            int.from_bytes(head[28:30], "little") & 0x3FFF,
        )
    if chunk == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _header_size(fileobj: IO[bytes], head: bytes, detected: str) -> tuple[int, int]:
    """The size an image Pillow refused at open (a decompression bomb) declares, so the
    refusal can name it. The format's opener reads the header without the size check
    `Image.open` adds after it, and decodes nothing; WebP's opener checks the size
    itself (its decoder allocates the canvas at once), so its header is read here.
    (0, 0) when even the header does not parse."""
    if detected == "webp":
        return _webp_header_size(head) or (0, 0)
    opener = Image.OPEN[_IMAGE_FORMATS[detected]][0]
    try:
        fileobj.seek(0)
        with opener(fileobj, "") as image:
            return image.size
    except (OSError, ValueError, SyntaxError, EOFError, KeyError, IndexError, TypeError,
            struct.error, Image.DecompressionBombError):  # fmt: skip
        return 0, 0


def process_image(
    fileobj: IO[bytes],
    *,
    max_pixels: int | None = None,
    max_side: int | None = None,
    thumbnail_side: int | None = None,
    quality: int | None = None,
) -> ProcessedImage:
    """Decode a JPEG/PNG/WebP/HEIF photo and return a clean, upright JPEG and a thumbnail.

    Raises `UnsupportedFileType` (not an image we accept, it does not decode, or a
    JPEG with more scans than `ATTACHMENT_JPEG_MAX_SCANS`) and `image_too_large` (more
    pixels than allowed, or a side longer than `ATTACHMENT_MAX_SIDE_PIXELS`, judged
    from the header before any pixel is decoded).
    """
    max_pixels = max_pixels or settings.ATTACHMENT_MAX_PIXELS
    max_side_pixels = settings.ATTACHMENT_MAX_SIDE_PIXELS
    max_side = max_side or settings.ATTACHMENT_IMAGE_MAX_SIDE
    thumbnail_side = thumbnail_side or settings.ATTACHMENT_THUMBNAIL_SIDE
    quality = quality or settings.ATTACHMENT_JPEG_QUALITY

    head = fileobj.read(HEAD_BYTES)
    fileobj.seek(0)
    detected = detect_format(head)
    if detected is None or detected == "pdf":
        raise UnsupportedFileType()
    if detected == "jpeg":
        max_scans = settings.ATTACHMENT_JPEG_MAX_SCANS
        if jpeg_scan_count(fileobj.read(), stop_above=max_scans) > max_scans:
            raise UnsupportedFileType()
        fileobj.seek(0)
    try:
        image = Image.open(fileobj, formats=[_IMAGE_FORMATS[detected]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        width, height = _header_size(fileobj, head, detected)
        raise image_too_large(width, height, max_pixels, max_side_pixels) from exc
    except (OSError, ValueError, SyntaxError, EOFError, KeyError) as exc:
        raise UnsupportedFileType() from exc

    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise UnsupportedFileType()
        # Each side too: Pillow keeps a pointer and some bookkeeping per row of every
        # copy the pipeline makes (about 43 bytes a row in all), so a 1 x 40,000,000
        # picture within the pixel budget would need 1.8 GB.
        if width * height > max_pixels or max(width, height) > max_side_pixels:
            raise image_too_large(width, height, max_pixels, max_side_pixels)
        try:
            orientation = int(image.getexif().get(_ORIENTATION_TAG, 1) or 1)
        except (OSError, ValueError, TypeError, SyntaxError):
            orientation = 1
        icc_profile = image.info.get("icc_profile")
        target = target_size(width, height, max_side)
        try:
            if image.format == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still
                # leaves at least the target size: most of the work is skipped.
                image.draft("RGB", target)
            image.load()
            pixels = _to_rgb(image)
        except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
            raise UnsupportedFileType() from exc

    # Each step below makes a new image: dropping every name of the previous one
    # keeps at most two frames in memory at once (the benchmark's peak memory).
    del image
    pixels = _shrink(pixels, target)
    pixels = _as_srgb(pixels, icc_profile)
    transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    # A derived image (new pixel buffer, plain `Image`, not the file's object) with
    # an empty info dict: nothing of the source's metadata can leak.
    clean = pixels.transpose(transpose) if transpose is not None else pixels.copy()
    del pixels
    clean.info = {}

    data = _encode_jpeg(clean, quality)
    # Straight from the clean image to the small size (no full-size copy first):
    # a box reduction by a whole factor, then Lanczos over the last few percent.
    thumbnail = clean.resize(
        _fit(clean.width, clean.height, thumbnail_side),
        Image.Resampling.LANCZOS,
        reducing_gap=1.0,
    )
    return ProcessedImage(
        data=data,
        thumbnail=_encode_jpeg(thumbnail, min(quality, 80)),
        width=clean.width,
        height=clean.height,
        source_format=detected,
    )


# --- PDF ---------------------------------------------------------------------------

# Keys and action types that make a PDF do something when opened or clicked, or
# send something out. XFA forms carry their own scripts (in XML streams), so an
# XFA form is refused whole. Links (/URI) are fine when clicked, not on open.
_ACTIVE_KEYS = {
    "/JS",
    "/JavaScript",
    "/EmbeddedFiles",
    "/EmbeddedFile",
    "/EF",
    "/Launch",
    "/XFA",
    "/RichMedia",
}
_ACTIVE_ACTIONS = {
    "/JavaScript",
    "/Launch",
    "/SubmitForm",
    "/ImportData",
    "/GoToR",
    "/GoToE",
    "/RichMediaExecute",
}
_AUTOMATIC_ACTIONS = {"/URI"}  # refused where they run by themselves: /OpenAction, /AA
# How the walk reached an item: what runs without a click is the value of /OpenAction
# (an action, or a destination), each action of an /AA dictionary (its values), and
# their /Next chains; not what an action points at (a go-to's page, whose links wait
# for a click: fpdf2 and office suites open the first page by an /OpenAction).
_CLICKED, _RUN, _TRIGGERS = 0, 1, 2
_ACTIVE_TYPES = {"/EmbeddedFile"}
# An object's header anywhere in the file: objects outside the cross-reference table
# (earlier revisions, orphans a repairing reader finds) are looked at too. Only
# whitespace between the tokens: what a repairing reader's search of the bytes finds.
_OBJECT_HEADER = re.compile(
    rb"(?<![0-9])([0-9]{1,10})[ \t\r\n\f\0]+([0-9]{1,5})[ \t\r\n\f\0]+obj\b"
)
# The header where the cross-reference table points, read as a PDF lexer reads it:
# whitespace and comments (to the end of their line) between the tokens. Possessive
# groups: a long comment is gone over once, never again for a shorter match.
_SEPARATORS = rb"(?:[ \t\r\n\f\0]++|%[^\r\n]*+)*+"
_LISTED_HEADER = re.compile(
    _SEPARATORS + rb"([0-9]{1,10})" + _SEPARATORS + rb"([0-9]{1,5})" + _SEPARATORS + rb"obj\b"
)
_WHITESPACE = b" \t\n\r\f\0"
# Where a stream's data starts (the keyword, then its end of line) and what must follow
# its data (white-space, then "endstream").
_STREAM_DATA = re.compile(rb">>[ \t\r\n\f\0]*+stream(?:\r\n|\n)")
_STREAM_END = re.compile(rb"[ \t\r\n\f\0]*+endstream")
# A trailer's dictionary: classic trailers are not objects, so the scan of object
# headers does not see them.
_TRAILER = re.compile(rb"trailer" + _SEPARATORS + rb"(?=<<)")
_START_XREF = re.compile(rb"startxref" + _SEPARATORS + rb"([0-9]{1,10})")
# A dictionary's end followed by a comment (then maybe more white-space and comments):
# where "stream" comes next, a viewer reads a stream and pypdf a dictionary.
_COMMENT_AFTER_DICTIONARY = re.compile(rb">>[ \t\r\n\f\0]*+%")
_REST_OF_COMMENTS = re.compile(rb"[^\r\n]*+" + _SEPARATORS)
# Nesting the re-reading of a dictionary with a key given twice follows at most.
_MAX_DEPTH = 200
# Object numbers and offsets at the head of an object stream.
_MEMBER_ENTRY = re.compile(rb"([0-9]{1,10})[ \t\r\n\f\0]+([0-9]{1,10})")
# Every error pypdf's parser lets out on hostile bytes.
_PARSE_ERRORS = (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError,
                 RecursionError, IndexError, AssertionError, NotImplementedError)  # fmt: skip


def pdf_active_content(found: str) -> Unprocessable:
    return Unprocessable(
        "pdf_active_content",
        _(
            "PDF files with scripts, XFA forms, launch, submit or import actions, links "
            "that open by themselves or embedded files are not accepted."
        ),
        details={"found": found},
    )


def pdf_unreadable(details: dict[str, Any] | None = None) -> Unprocessable:
    return Unprocessable("pdf_unreadable", _("This PDF file could not be read."), details=details)


@dataclass
class _PypdfReports:
    """What pypdf reports only as warnings, collected for the inspection running in
    this context (by its loggers' class, whatever the logging configuration says):

    - a key given twice in one dictionary (real scanner apps and generators write
      some): pypdf keeps the first value and drops the others unseen, PDF viewers
      keep the last. The object is read again with every value (`_EveryValue`):
      the reader takes the last one, the check looks at all of them. A key whose
      dictionary cannot be read again is in `unresolved_keys`, and refused;
    - a cross-reference entry pypdf drops because it cannot read the header there
      (`4 %c\n0 obj`): a reader whose lexer skips the comment still finds the object
      where the table says, so the scan reads it there;
    - a dictionary pypdf read only up to a value it could not read (`partial_reads`),
      keeping the keys before it and dropping the rest unseen, where a viewer's
      parser may read on (pdf.js takes `}` as a value and goes on to an /OpenAction);
      or one with a key that is no name (`(OpenAction)`, `5`), which pypdf skips to
      read the next token as a key: the file is malformed (ISO 32000 7.3.7), and a
      reader that pairs keys and values its own way sees other entries.

    And `unreadable_objects`: the objects (number, generation) pypdf could not read,
    or read only in part, that the check met (walked to, or found in the bytes: a
    viewer rebuilding a damaged file's table reads every object whose header it
    finds, with its own recovery). The file is refused: what a viewer makes of them
    cannot be told.

    And, found when an object is read again with every value, the values of a
    stream's /Length given more than once (`stream_lengths`, one list per stream):
    pypdf cuts the stream's data with the first, viewers with the last, so they
    must all be the same length (`_stream_lengths_differ`)."""

    duplicate_keys: list[str] = field(default_factory=list)
    unresolved_keys: list[str] = field(default_factory=list)
    dropped_entries: list[tuple[int, int, int]] = field(default_factory=list)
    stream_lengths: list[list[Any]] = field(default_factory=list)
    partial_reads: int = 0
    unreadable_objects: list[tuple[int, int]] = field(default_factory=list)


_PYPDF_REPORTS: ContextVar[_PypdfReports | None] = ContextVar("pypdf_reports", default=None)


def _duplicates_reported() -> int:
    """How many keys given twice pypdf has reported so far in this inspection."""
    reports = _PYPDF_REPORTS.get()
    return len(reports.duplicate_keys) if reports is not None else 0


def _partial_reads() -> int:
    """How many dictionaries pypdf has read only in part so far in this inspection."""
    reports = _PYPDF_REPORTS.get()
    return reports.partial_reads if reports is not None else 0


def _note_unreadable(number: int, generation: int) -> None:
    reports = _PYPDF_REPORTS.get()
    if reports is not None:
        reports.unreadable_objects.append((number, generation))


def _collect(record: logging.LogRecord) -> None:
    reports = _PYPDF_REPORTS.get()
    values = record.args
    if reports is None or not isinstance(values, dict):
        return
    message = str(record.msg)
    if message.startswith("Multiple definitions in dictionary"):
        reports.duplicate_keys.append(str(values.get("key")))
    elif message.startswith("Ignoring wrong pointing object"):
        reports.dropped_entries.append((values["offset"], values["id"], values["gen"]))
    elif message in ("%(exception)s", "%(exception)r") and (
        record.name == "pypdf.generic._data_structures"
    ):
        # A dictionary's "return partial data" (`s`), or a key that is no name (a
        # string, a number: ISO 32000 7.3.7 wants a name) that pypdf skipped to read
        # the next token as a key (`r`), where another reader may read the pairs apart.
        reports.partial_reads += 1


class _ReportingLogger(logging.Logger):
    """The class of pypdf's loggers whose warnings the inspection collects: while one
    runs in this context, every warning reaches `_collect`, whatever the logging
    configuration says (a level, `logging.disable`, a logger disabled by a dictConfig:
    each stops a record before a logger's filters see it). It is then logged only as
    that configuration says."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging.Logger's name)
        return _PYPDF_REPORTS.get() is not None or super().isEnabledFor(level)

    def handle(self, record: logging.LogRecord) -> None:
        _collect(record)
        if super().isEnabledFor(record.levelno):
            super().handle(record)


for _name in ("pypdf.generic._data_structures", "pypdf._reader"):
    # The logger pypdf asks for by name, given our class (a logger made before this
    # import, by a configuration naming it, keeps its handlers and filters).
    logging.getLogger(_name).__class__ = _ReportingLogger


class _TooComplex(Exception):
    """The file asks for more objects or more parsing than the limits allow."""


class _Budget:
    """What the active-content check may still do: objects read (walked from the
    catalogue, found in the bytes, members of object streams) and bytes our own scan
    parses (counted again where objects overlap). Hostile files make both grow much
    faster than their size; an honest file stays far below."""

    def __init__(self) -> None:
        self.objects = settings.PDF_MAX_OBJECTS
        self.parsed_bytes = settings.PDF_MAX_PARSED_BYTES

    def take_object(self) -> None:
        self.objects -= 1
        if self.objects < 0:
            raise _TooComplex

    def take_bytes(self, count: int) -> None:
        self.parsed_bytes -= count
        if self.parsed_bytes < 0:
            raise _TooComplex


def _parse_at(source: io.BytesIO, position: int, reader: PdfReader, budget: _Budget) -> Any:
    """The object that starts at `position`, or None when none does (digits followed
    by "obj" inside some binary data). The bytes read are charged to the budget, but
    a stream's data: pypdf takes it in one slice, while everything else (a string
    above all) it reads a character at a time."""
    budget.take_object()
    source.seek(position)
    obj = None
    try:
        _skip_whitespace(source)
        obj = read_object(source, reader)
    except _PARSE_ERRORS:
        pass
    # `_data`: the stream's bytes as stored (`get_data()` decodes them).
    data = obj._data if isinstance(obj, StreamObject) else b""
    budget.take_bytes(max(source.tell() - position - len(data), 1))
    return obj


def _skip_whitespace(source: IO[bytes]) -> None:
    """Past the white-space at the source's position, as pypdf's parser skips it
    before an object (comments are read_object's own)."""
    while (byte := source.read(1)) and byte in _WHITESPACE:
        pass
    if byte:
        source.seek(-1, io.SEEK_CUR)


class _RepeatedKeys(DictionaryObject):
    """A dictionary that gives some key more than once, as PDF viewers read it: the
    last value of each key (pdf.js, PDFium, qpdf and MuPDF all keep the last one);
    `earlier` holds the values the last ones override, which pypdf (it keeps the
    first) and poppler (in a dictionary of 32 keys or more) may use instead."""

    def __init__(self) -> None:
        super().__init__()
        self.earlier: list[tuple[NameObject, Any]] = []


class _EveryValue:
    """Reads the object at a position again, keeping every value of a key given
    twice (`_RepeatedKeys`), nested dictionaries included. Only dictionaries and
    arrays are its own: every other token is pypdf's `read_object`, so names
    (`/J#53` is `/JS`), strings and references read the same as in pypdf's parse. A
    stream's dictionary is read, never its data; when it gives /Length more than once,
    the values are noted (`_PypdfReports.stream_lengths`). Anything malformed raises:
    pypdf's recovery from it cannot be told apart from what a viewer does."""

    def __init__(self, source: io.BytesIO, reader: PdfReader, budget: _Budget) -> None:
        self.source = source
        self.reader = reader
        self.budget = budget

    def read(self, position: int) -> Any:
        self.budget.take_object()
        self.source.seek(position)
        try:
            found = self._value(0)
            # A stream: "stream" after the dictionary, white-space and comments
            # skipped as a viewer's lexer skips them.
            if isinstance(found, _RepeatedKeys) and self._next(6) == b"stream":
                _note_stream_lengths(found)
            return found
        finally:
            self.budget.take_bytes(max(self.source.tell() - position, 1))

    def _next(self, size: int) -> bytes:
        """The next `size` bytes after white-space and comments, left unread."""
        while True:
            _skip_whitespace(self.source)
            head = self.source.read(size)
            self.source.seek(-len(head), io.SEEK_CUR)
            if not head.startswith(b"%"):
                return head
            while (byte := self.source.read(1)) and byte not in b"\r\n":
                pass

    def _value(self, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise _TooComplex
        head = self._next(2)
        if head == b"<<":
            self.source.seek(2, io.SEEK_CUR)
            return self._dictionary(depth)
        if head[:1] == b"[":
            self.source.seek(1, io.SEEK_CUR)
            values = ArrayObject()
            while (head := self._next(1)) != b"]":
                if not head:
                    raise PdfReadError("Array not closed.")
                values.append(self._value(depth + 1))
            self.source.seek(1, io.SEEK_CUR)
            return values
        return read_object(self.source, self.reader)

    def _dictionary(self, depth: int) -> DictionaryObject:
        entries: list[tuple[NameObject, Any]] = []
        while (head := self._next(2)) != b">>":
            if not head.startswith(b"/"):
                raise PdfReadError("Dictionary key expected.")
            key = read_object(self.source, self.reader)
            entries.append((cast(NameObject, key), self._value(depth + 1)))
        self.source.seek(2, io.SEEK_CUR)
        values: DictionaryObject = DictionaryObject()
        if len({key for key, _value in entries}) < len(entries):
            values = _RepeatedKeys()
        for key, value in entries:
            if key in values:
                cast(_RepeatedKeys, values).earlier.append((key, values[key]))
            values[key] = value
        return values


def _note_stream_lengths(stream: _RepeatedKeys) -> None:
    earlier = [value for key, value in stream.earlier if key == "/Length"]
    reports = _PYPDF_REPORTS.get()
    if earlier and reports is not None:
        reports.stream_lengths.append([*earlier, stream["/Length"]])


def _stream_lengths_differ(reports: _PypdfReports) -> bool:
    """Whether a stream gives /Length more than once with different values.

    pypdf reads a stream's data with the first /Length; pdf.js, PDFium, qpdf and
    MuPDF with the last (each rereads from the start up to the first `endstream`
    when its length does not land on one). Two different lengths put the end of the
    stream in two places: an object stream whose members past the first length are
    invisible to pypdf (a script a viewer runs), or data pypdf reads as objects.
    Reading the last value instead would still depend on where each reader resyncs,
    so such a file is refused; the same length given twice (a reference and the
    number it holds included) reads as one /Length does, in pypdf and in viewers. A
    value that is no whole number, or refers to none, counts as different: pypdf
    and viewers each make up a length of their own for it.
    Run once the file has been walked and scanned: resolving a reference may read
    an object, and that object may note lengths of its own."""
    index = 0
    while index < len(reports.stream_lengths):
        lengths = {_whole_number(value) for value in reports.stream_lengths[index]}
        if len(lengths) > 1 or None in lengths:
            return True
        index += 1
    return False


def _whole_number(value: Any) -> int | None:
    """The whole number `value` is or refers to; None for anything else."""
    try:
        value = value.get_object() if isinstance(value, IndirectObject) else value
    except _PARSE_ERRORS:
        return None
    return int(value) if isinstance(value, NumberObject) else None


def _comment_before_stream(data: bytes) -> bool:
    """Whether a dictionary is followed by a comment, then the keyword "stream".

    pdf.js, PDFium and Acrobat skip a comment as white-space and read a stream there;
    pypdf (its `_read_stream_data`) looks only past white-space, reads a plain
    dictionary, and never sees the data: an object stream written so is invisible to
    the scan (its members, a script among them), wherever it sits. Searched in the
    raw bytes, nested dictionaries and objects pypdf cannot read included. Each
    comment is gone over once: a `>>` inside a comment that led nowhere leads to the
    same place."""
    position = 0
    while (found := _COMMENT_AFTER_DICTIONARY.search(data, position)) is not None:
        rest = _REST_OF_COMMENTS.match(data, found.end())
        position = rest.end() if rest is not None else found.end()
        if data.startswith(b"stream", position):
            return True
    return False


def _read_every_value(
    source: io.BytesIO, position: int, reader: PdfReader, budget: _Budget, *, report: bool = True
) -> Any:
    """The object at `position` with every value of its repeated keys (`_EveryValue`);
    None when it cannot be read so (the key is then refused, see `_PypdfReports`)."""
    try:
        return _EveryValue(source, reader, budget).read(position)
    except _PARSE_ERRORS:
        reports = _PYPDF_REPORTS.get()
        if reports is not None and report:
            reports.unresolved_keys.append(
                reports.duplicate_keys[-1] if reports.duplicate_keys else "?"
            )
        return None


def _use_last_values(found: Any, every: Any) -> None:
    """Give the object pypdf read (first value of a repeated key) the last values
    instead, in place: what the reader serves (the page tree above all) is then what
    viewers use. A stream keeps its data and pypdf's shape (no /Length): the data
    pypdf cut with the first /Length, which is what a viewer reads only when every
    /Length is the same (`_stream_lengths_differ` refuses the file otherwise)."""
    if isinstance(found, StreamObject) and isinstance(every, DictionaryObject):
        found.clear()
        found.update((key, value) for key, value in every.items() if key != "/Length")
    elif isinstance(found, DictionaryObject) and isinstance(every, DictionaryObject):
        found.clear()
        found.update(every)
    elif isinstance(found, ArrayObject) and isinstance(every, ArrayObject):
        found[:] = every


class _Reader(PdfReader):
    """pypdf's reader, except for a reference to an object that is not where the
    cross-reference table says (or not listed at all): pypdf copies the whole file
    and searches it with a regular expression, again for each such reference (a
    catalogue listing thousands of missing objects cost minutes). Here the file's
    object headers are indexed once, on the first such reference, and the object is
    read from the first header of its number, as pypdf's search would have found."""

    def __init__(self, data: bytes, budget: _Budget) -> None:
        self._data = data
        self._source = io.BytesIO(data)
        self._budget = budget
        self._first_headers: dict[tuple[int, int], int] | None = None
        self._streams: dict[int, tuple[io.BytesIO, int, dict[int, int]]] = {}
        # Objects read with a key given twice: served with the last values, and
        # scanned again with all of them (see `_PypdfReports`).
        self.repeated_keys: set[tuple[int, int]] = set()
        reported = _duplicates_reported()
        super().__init__(io.BytesIO(data), strict=False)
        if _duplicates_reported() > reported:
            self._use_last_trailer_values()

    def get_object(self, indirect_reference: int | IndirectObject) -> Any:
        if isinstance(indirect_reference, int):
            indirect_reference = IndirectObject(indirect_reference, 0, self)
        partial = _partial_reads()
        found = self._read(indirect_reference)
        if _partial_reads() > partial:
            _note_unreadable(indirect_reference.idnum, indirect_reference.generation)
        return found

    def _read(self, indirect_reference: IndirectObject) -> Any:
        number, generation = indirect_reference.idnum, indirect_reference.generation
        if (generation, number) in self.resolved_objects:
            return super().get_object(indirect_reference)
        offset = self.xref.get(generation, {}).get(number)
        reported = _duplicates_reported()
        listed = None
        if offset is not None:
            listed = (
                _LISTED_HEADER.match(self._data, offset) if 0 <= offset < len(self._data) else None
            )
        if (generation == 0 and number in self.xref_objStm) or self.xref_free_entry.get(
            generation, {}
        ).get(number, False):
            return super().get_object(indirect_reference)
        if listed and _header_of(listed) == (number, generation):
            # pypdf reads no comment inside a header (`4 0 %c\nobj`); a lexer does.
            if b"%" not in self._data[offset : listed.end()]:
                found = super().get_object(indirect_reference)
                if _duplicates_reported() > reported:
                    self._use_last_values(found, listed.end(), number, generation)
                return found
            start: int | None = listed.end()
        else:
            start = self._header_index().get((number, generation))
        found = None
        if start is not None:
            found = _parse_at(self._source, start, self, self._budget)
            if found is not None and _duplicates_reported() > reported:
                self._use_last_values(found, start, number, generation, decrypt=False)
            found = self._decrypt(found, number, generation)
        self.cache_indirect_object(generation, number, found)
        return found

    def _use_last_trailer_values(self) -> None:
        """The trailer pypdf reads first (where the last startxref points: a classic
        trailer or a cross-reference stream's dictionary) takes the last value of a
        key it gives twice, `/Root` above all, as objects do."""
        starts = list(_START_XREF.finditer(self._data))
        at = int(starts[-1][1]) if starts else -1
        if not 0 <= at < len(self._data):
            return
        header = _LISTED_HEADER.match(self._data, at)
        trailer = header or _TRAILER.search(self._data, at)
        if trailer is None:
            return
        every = _read_every_value(self._source, trailer.end(), self, self._budget, report=False)
        if isinstance(every, _RepeatedKeys):
            for key in {key for key, _value in every.earlier}:
                self.trailer[key] = every[key]

    def _decrypt(self, found: Any, number: int, generation: int) -> Any:
        # `_override_encryption`: pypdf is reading the /Encrypt dictionary itself.
        if found is None or self._override_encryption or not self._encryption:
            return found
        if not self._encryption.is_decrypted():
            raise FileNotDecryptedError("File has not been decrypted")
        return self._encryption.decrypt_object(found, number, generation)

    def _use_last_values(
        self, found: Any, position: int, number: int, generation: int, *, decrypt: bool = True
    ) -> None:
        self.repeated_keys.add((number, generation))
        every = _read_every_value(self._source, position, self, self._budget)
        _use_last_values(found, self._decrypt(every, number, generation) if decrypt else every)

    def _get_object_from_stream(self, indirect_reference: IndirectObject) -> Any:
        """A compressed object, read alone and charged to the budget. pypdf parses every
        member of the stream at once, each to its end: members whose offsets fall
        inside one long string made that quadratic, outside any limit."""
        number = indirect_reference.idnum
        stream_number = self.xref_objStm[number][0]
        if stream_number not in self._streams:
            stream = IndirectObject(stream_number, 0, self).get_object()
            if not isinstance(stream, StreamObject) or stream.get("/Type") != "/ObjStm":
                raise PdfReadError(f"Object {stream_number} is not an object stream.")
            content = stream.get_data()
            first = int(stream.get("/First", 0))
            count = int(stream.get("/N", 0))
            offsets: dict[int, int] = {}
            for index, entry in enumerate(_MEMBER_ENTRY.finditer(content, 0, max(first, 0))):
                if index >= count:
                    break
                offsets.setdefault(int(entry[1]), int(entry[2]))
            self._streams[stream_number] = (io.BytesIO(content), first, offsets)
        source, first, offsets = self._streams[stream_number]
        offset = offsets.get(number)
        if offset is None:
            return NullObject()
        reported = _duplicates_reported()
        found = _parse_at(source, first + offset, self, self._budget)
        if found is not None and _duplicates_reported() > reported:
            # Members of an object stream are not encrypted one by one.
            self.repeated_keys.add((number, 0))
            _use_last_values(found, _read_every_value(source, first + offset, self, self._budget))
        found = NullObject() if found is None else found
        self.cache_indirect_object(0, number, found)  # pypdf's get_object leaves it to us
        return found

    def _header_index(self) -> dict[tuple[int, int], int]:
        if self._first_headers is None:
            index: dict[tuple[int, int], int] = {}
            for match in _OBJECT_HEADER.finditer(self._data):
                index.setdefault((int(match[1]), int(match[2])), match.end())
                if len(index) > settings.PDF_MAX_OBJECTS:
                    raise _TooComplex
            self._first_headers = index
        return self._first_headers


def _header_of(match: re.Match[bytes]) -> tuple[int, int]:
    return int(match[1]), int(match[2])


def _entries(obj: DictionaryObject) -> Iterator[tuple[Any, Any]]:
    """Every key and value of a dictionary: a key given twice with each of its values."""
    yield from obj.items()
    if isinstance(obj, _RepeatedKeys):
        yield from obj.earlier


def _is_active(obj: DictionaryObject, automatic: bool) -> str | None:
    for key in obj:
        if key in _ACTIVE_KEYS:
            return str(key)
    for key, value in _entries(obj):
        if (
            key == "/S"
            and isinstance(value, NameObject)
            and (value in _ACTIVE_ACTIONS or (automatic and value in _AUTOMATIC_ACTIONS))
        ):
            return str(value)
    for key, value in _entries(obj):
        if key == "/Type" and isinstance(value, NameObject) and value in _ACTIVE_TYPES:
            return str(value)
    return None


def _reached(key: Any, reached: int) -> int:
    """How the value of `key`, in a dictionary the walk `reached` so, is reached."""
    if key == "/OpenAction" or (reached == _TRIGGERS) or (reached == _RUN and key == "/Next"):
        return _RUN
    return _TRIGGERS if key == "/AA" else _CLICKED


class _Walk:
    """Walks objects (dictionary keys and values, never stream contents) and their
    references, each referenced object once (three times at most: an action that runs
    without a click, or an /AA dictionary, is looked at again with that in mind, see
    `_reached`). `read` collects the (number, generation) of each object the reader
    resolved."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.seen: set[tuple[int, int, int]] = set()
        self.read: set[tuple[int, int]] = set()

    def __call__(self, root: Any) -> str | None:
        """The first active element reachable from `root`."""
        stack: list[tuple[Any, int]] = [(root, _CLICKED)]
        while stack:
            item, reached = stack.pop()
            if isinstance(item, IndirectObject):
                ref = (item.idnum, item.generation, reached)
                if ref in self.seen:
                    continue
                self.seen.add(ref)
                self.budget.take_object()
                item = item.get_object()
                if item is not None and not isinstance(item, NullObject):
                    self.read.add(ref[:2])
            if isinstance(item, DictionaryObject):  # includes streams' dictionaries
                found = _is_active(item, reached != _CLICKED)
                if found:
                    return found
                stack.extend((value, _reached(key, reached)) for key, value in _entries(item))
            elif isinstance(item, ArrayObject):  # a /Next list, a destination
                stack.extend((value, reached) for value in item)
        return None


def _every_object(
    reader: _Reader,
    data: bytes,
    walked: set[tuple[int, int]],
    dropped: Sequence[tuple[int, int, int]] = (),
) -> Iterator[Any]:
    """Every object whose header appears in the file, whether the cross-reference
    table lists it or not; every object where the table points (read as a lexer
    reads it, comments included); and the members of every object stream
    (compressed objects, invisible to a scan of the raw bytes). Yielded one by one,
    so each is walked and dropped before the next is parsed.

    Except the bodies the walk from the trailer has read already (`walked`): an
    object the walk resolved, whose header sits exactly where the cross-reference
    table puts it, is the same bytes; parsing it again only doubled the scan (a
    signed file's signature, tens of kilobytes of hexadecimal, read one character at
    a time). Any other body of the same number (an older revision, a shadow the
    table does not list) is still read. Overlapping headers are each read (a body
    hidden in another's string is a body a repairing reader may find), the bytes
    read counted by the budget."""
    source = io.BytesIO(data)
    offsets: dict[int, dict[int, Any]] = reader.xref
    free = reader.xref_free_entry
    listed = [
        (offset, number, generation)
        for generation, entries in offsets.items()
        for number, offset in entries.items()
        if not free.get(generation, {}).get(number, False)
    ] + list(dropped)
    skips: dict[int, int] = {}
    headers = _object_headers(data, skips)
    done: set[int] = set()  # where bodies start: an object both found and listed is read once
    for start, number, generation, end in itertools.chain(headers, _listed(data, listed)):
        if end in done:
            continue
        if (number, generation) in walked and offsets.get(generation, {}).get(number) == start:
            _note_whole_stream(
                skips, data, end, reader.cache_get_indirect_object(generation, number)
            )
            continue
        done.add(end)
        partial = _partial_reads()
        obj = yield from _parse_every_value(source, end, reader)
        if obj is None or _partial_reads() > partial:
            _note_unreadable(number, generation)
        _note_whole_stream(skips, data, end, obj)
        if isinstance(obj, StreamObject) and obj.get("/Type") == "/ObjStm":
            encryption = reader._encryption  # names are never encrypted, stream data is
            if encryption is not None:
                obj = cast(StreamObject, encryption.decrypt_object(obj, number, generation))
            yield from _object_stream_members(reader, obj, number, walked)
    # A trailer with a key given twice (the only ones pypdf reads are its own).
    for match in _TRAILER.finditer(data) if _duplicates_reported() else ():
        trailer = _read_every_value(source, match.end(), reader, reader._budget, report=False)
        if trailer is not None:
            yield trailer


def _object_headers(data: bytes, skips: dict[int, int]) -> Iterator[tuple[int, int, int, int]]:
    """Every object header in the bytes (start, number, generation, end), as a repairing
    reader's search finds them, but those inside the data of a stream every reader
    reads whole: `skips` maps where such a stream's header ends to where its data ends,
    noted by the caller as it reads each object (`_note_whole_stream`)."""
    position = 0
    while (match := _OBJECT_HEADER.search(data, position)) is not None:
        yield match.start(), int(match[1]), int(match[2]), match.end()
        position = max(match.end(), skips.get(match.end(), 0))


def _note_whole_stream(skips: dict[int, int], data: bytes, header_end: int, obj: Any) -> None:
    """Note where the data of `obj`, whose header ends at `header_end`, ends, when it is
    a stream every reader ends there: text that reads as a header inside it (a page's
    uncompressed text, a photo's bytes) is data, not an object (`_object_headers`).

    That is: the data pypdf read, found right after "stream" and its end of line and
    followed by "endstream", holding neither "endstream" nor "endobj". pypdf and PDF
    viewers take as many bytes as /Length says when "endstream" follows them, else
    they search for the first "endstream" (a reader rebuilding a damaged file searches
    for an object's first "endobj"): with neither keyword inside the data, a /Length
    that lands elsewhere (the known way to show one reader data where another reads
    objects) lands on no "endstream" before this one, and a longer one that lands on a
    later stream's would have given pypdf that longer data, keywords and all. Any other
    stream's data is searched for headers like the rest of the bytes."""
    if not isinstance(obj, StreamObject):
        return
    content = obj._data  # as stored (encoded, encrypted or not)
    start = _STREAM_DATA.search(data, header_end)
    if start is None:
        return
    end = start.end() + len(content)
    if (
        data[start.end() : end] == content
        and _STREAM_END.match(data, end)
        and b"endstream" not in content
        and b"endobj" not in content
    ):
        skips[header_end] = end


def _parse_every_value(
    source: io.BytesIO, position: int, reader: _Reader
) -> Generator[Any, None, Any]:
    """Yields the object at `position` as pypdf reads it, with the last values of
    repeated keys, then, if it has some, the same object read with all of them.
    Returns the first (None, and yields nothing, when no object starts there)."""
    reported = _duplicates_reported()
    obj = _parse_at(source, position, reader, reader._budget)
    if obj is None:
        if _duplicates_reported() > reported:
            # pypdf reads a dictionary's keys before its stream data: a stream it could
            # not read with its first /Length (beyond pypdf's limit, say), which a
            # viewer reads with the last, still has its lengths noted.
            _read_every_value(source, position, reader, reader._budget, report=False)
        return None
    every = None
    if _duplicates_reported() > reported:
        every = _read_every_value(source, position, reader, reader._budget)
        _use_last_values(obj, every)
    yield obj
    if every is not None:
        yield every
    return obj


def _listed(data: bytes, listed: list[tuple[int, int, int]]) -> Iterator[tuple[int, int, int, int]]:
    for offset, number, generation in listed:
        match = _LISTED_HEADER.match(data, offset) if 0 <= offset < len(data) else None
        if match and (int(match[1]), int(match[2])) == (number, generation):
            yield offset, number, generation, match.end()


def _object_stream_members(
    reader: _Reader, stream: StreamObject, number: int, walked: set[tuple[int, int]]
) -> Iterator[Any]:
    """The objects of an object stream: at most /N of them, each offset read once
    (a head repeating one offset thousands of times asked for the same body again
    and again), the members the walk resolved from this stream skipped."""
    content = stream.get_data()
    first = int(stream.get("/First", 0))
    count = int(stream.get("/N", 0))
    member = io.BytesIO(content)
    offsets: set[int] = set()
    for index, entry in enumerate(_MEMBER_ENTRY.finditer(content, 0, max(first, 0))):
        if index >= count:
            break
        member_number, offset = int(entry[1]), int(entry[2])
        if offset in offsets or (
            (member_number, 0) in walked
            and reader.xref_objStm.get(member_number, (None, None))[0] == number
        ):
            continue
        offsets.add(offset)
        partial = _partial_reads()
        if (yield from _parse_every_value(member, first + offset, reader)) is None or (
            _partial_reads() > partial
        ):
            _note_unreadable(member_number, 0)


def _find_active_content(
    reader: _Reader, data: bytes, dropped: list[tuple[int, int, int]]
) -> str | None:
    walk = _Walk(reader._budget)
    found = walk(reader.trailer)
    if found:
        return found
    # An object with a key given twice is read again by the scan, with every value.
    walked = set(walk.read) - reader.repeated_keys
    for obj in _every_object(reader, data, walked, dropped):
        found = walk(obj)
        if found:
            return found
    return None


def count_pdf_pages(data: bytes) -> int:
    """The pages of a PDF `inspect_pdf` accepted, counted as it counts them: with the
    last value of a key given twice, as viewers show them (pypdf's own reader takes
    the first)."""
    collecting = _PYPDF_REPORTS.set(_PypdfReports())
    try:
        reader = _Reader(data, _Budget())
        if reader.is_encrypted:
            reader.decrypt("")
        return len(reader.pages)
    finally:
        _PYPDF_REPORTS.reset(collecting)


def inspect_pdf(fileobj: IO[bytes], *, max_pages: int | None = None) -> PdfInfo:
    """Parse a PDF; refuse it when unreadable, too long, too complex to check in
    bounded time and memory, or carrying active content."""
    max_pages = max_pages or settings.ATTACHMENT_PDF_MAX_PAGES
    head = fileobj.read(HEAD_BYTES)
    fileobj.seek(0)
    if detect_format(head) != "pdf":
        raise UnsupportedFileType()
    reports = _PypdfReports()
    collecting = _PYPDF_REPORTS.set(reports)
    try:
        data = fileobj.read()
        if _comment_before_stream(data):
            raise pdf_unreadable({"reason": "comment_before_stream"})
        reader = _Reader(data, _Budget())
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unprocessable(
                "pdf_encrypted", _("Password-protected PDF files are not accepted.")
            )
        pages = len(reader.pages)
        if pages < 1:
            raise pdf_unreadable()
        if pages > max_pages:
            raise Unprocessable(
                "pdf_too_many_pages",
                _("The PDF has too many pages (at most %(limit)s).") % {"limit": max_pages},
                details={"pages": pages, "max_pages": max_pages},
            )
        found = _find_active_content(reader, data, reports.dropped_entries)
        lengths_differ = _stream_lengths_differ(reports)
    except ApiError:
        raise
    except (_TooComplex, MemoryError) as exc:
        raise pdf_unreadable({"reason": "too_complex"}) from exc
    except _PARSE_ERRORS as exc:
        raise pdf_unreadable() from exc
    finally:
        _PYPDF_REPORTS.reset(collecting)
    if found:
        raise pdf_active_content(found)
    if reports.unresolved_keys:
        raise pdf_unreadable({"reason": "duplicate_key", "key": reports.unresolved_keys[0]})
    if lengths_differ:
        raise pdf_unreadable({"reason": "duplicate_key", "key": "/Length"})
    if reports.unreadable_objects or reports.partial_reads:
        details = {"reason": "unreadable_object"}
        if reports.unreadable_objects:
            number, generation = reports.unreadable_objects[0]
            details["object"] = f"{number} {generation}"
        raise pdf_unreadable(details)
    return PdfInfo(pages=pages)
