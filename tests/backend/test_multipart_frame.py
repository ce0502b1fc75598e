"""The frame of a multipart body, read as it arrives in pieces of any size."""

from __future__ import annotations

import pytest

from backend.multipart_frame import MultipartFrame, boundary_of, django_keeps_file_name

BOUNDARY = b"XyZ"


def body(parts: list[tuple[str, str | None, bytes]], *, close: bool = True) -> bytes:
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        out += f"--XyZ\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return out + (b"--XyZ--\r\n" if close else b"")


def read_in_pieces(data: bytes, size: int) -> MultipartFrame:
    frame = MultipartFrame(BOUNDARY)
    for start in range(0, len(data), size):
        frame.feed(data[start : start + size])
    frame.finish()
    return frame


FORM = [("document_code", None, b"doc-1"), ("file", "Giấy khai sinh.jpg", b"\xff\xd8--Xy\r\n")]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 10_000])
def test_a_whole_body_is_sound_however_it_is_cut_into_pieces(size: int) -> None:
    frame = read_in_pieces(body(FORM), size)
    assert (frame.closed, frame.unnamed_files, frame.sound) == (True, [], True)


def test_a_body_cut_anywhere_before_its_closing_delimiter_is_not_closed() -> None:
    whole = body(FORM)
    closing = whole.rindex(b"--XyZ--") + len(b"--XyZ--")
    for end in range(closing):
        for size in (1, 4, len(whole)):
            frame = read_in_pieces(whole[:end], size)
            assert not frame.closed, (end, size)
            assert not frame.sound


def test_an_epilogue_after_the_closing_delimiter_is_ignored() -> None:
    frame = read_in_pieces(body(FORM) + b"\r\nan epilogue\r\n", 3)
    assert frame.sound


def test_a_part_after_the_closing_delimiter_leaves_the_body_unclosed() -> None:
    frame = read_in_pieces(body(FORM) + body(FORM, close=False), 5)
    assert not frame.closed


@pytest.mark.parametrize(
    "filename", [".", "..", "photos/", "a\\", "dir/..", "\x01\x02", "&#46;&#46;", "/"]
)
def test_a_file_part_django_would_drop_for_its_name_is_named(filename: str) -> None:
    assert not django_keeps_file_name(filename)
    frame = read_in_pieces(body([("note", None, b"x"), ("file", filename, b"data")]), 4)
    assert frame.closed
    assert frame.unnamed_files == ["file"]
    assert not frame.sound


@pytest.mark.parametrize(
    "filename",
    ["Giấy khai sinh.jpg", "C:\\fakepath\\ảnh.jpg", "a/b.pdf", ".hidden", "...", "x" * 300],
)
def test_a_file_name_django_keeps_is_no_problem(filename: str) -> None:
    assert django_keeps_file_name(filename)
    assert read_in_pieces(body([("file", filename, b"data")]), 3).sound


def test_a_text_part_and_an_empty_file_name_are_not_judged_here() -> None:
    # `filename=""` is a text field to Django (the route answers `filename_missing`).
    frame = read_in_pieces(body([("file", "", b"data"), ("note", None, b"..")]), 2)
    assert frame.sound


def test_an_encoded_file_name_is_read_as_django_reads_it() -> None:
    header = "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%2E%2E"
    data = f"--XyZ\r\n{header}\r\n\r\ndata\r\n--XyZ--\r\n".encode()
    assert read_in_pieces(data, 6).unnamed_files == ["file"]


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=XyZ", b"XyZ"),
        ('multipart/form-data; boundary="a b"', b"a b"),
        ("multipart/form-data", None),
        ("application/json", None),
        ("multipart/form-data; boundary=ảnh", None),
    ],
)
def test_the_boundary_of_a_content_type(content_type: str, boundary: bytes | None) -> None:
    assert boundary_of(content_type) == boundary
