"""backend/signed_links.py: one maker for every short-lived link (attachments, agency files)."""

from __future__ import annotations

import json
import time
from unittest import mock

import pytest
from django.test import override_settings

from backend.errors import ApiError, NotFound, PermissionDenied
from backend.signed_links import PageSigner, open_link, sign_link


def expired() -> ApiError:
    return PermissionDenied("link_expired", "expired")


def test_a_link_opens_for_its_purpose_within_its_age() -> None:
    token = sign_link({"a": "1"}, purpose="tests.one")
    assert open_link(token, purpose="tests.one", max_age=60, expired=expired) == {"a": "1"}


def test_a_link_made_for_one_purpose_is_refused_by_another() -> None:
    token = sign_link({"a": "1"}, purpose="tests.one")
    with pytest.raises(NotFound):
        open_link(token, purpose="tests.two", max_age=60, expired=expired)


@pytest.mark.parametrize(("age", "opens"), [(60, True), (61, False)])
def test_a_link_expires_after_max_age(age: int, opens: bool) -> None:
    now = float(int(time.time()))  # signing stamps whole seconds
    with mock.patch("time.time", return_value=now):
        token = sign_link({"a": "1"}, purpose="tests.one")
    with mock.patch("time.time", return_value=now + age):
        if opens:
            assert open_link(token, purpose="tests.one", max_age=60, expired=expired)
        else:
            with pytest.raises(PermissionDenied) as caught:
                open_link(token, purpose="tests.one", max_age=60, expired=expired)
            assert caught.value.code == "link_expired"


def test_a_tampered_link_is_not_found() -> None:
    token = sign_link({"a": "1"}, purpose="tests.one")
    with pytest.raises(NotFound):
        open_link(token[:-2] + "xx", purpose="tests.one", max_age=60, expired=expired)


def test_a_signed_value_that_is_not_a_grant_is_not_found() -> None:
    from django.core import signing

    token = signing.dumps(["a", "list"], salt="tests.one")
    with pytest.raises(NotFound):
        open_link(token, purpose="tests.one", max_age=60, expired=expired)


def test_a_page_signer_makes_the_links_sign_link_makes() -> None:
    now = float(int(time.time()))
    with mock.patch("time.time", return_value=now):
        sign = PageSigner("tests.one").sign_link
        tokens = [sign({"a": str(n), "g": n}) for n in range(3)]
        assert tokens[1] == sign_link({"a": "1", "g": 1}, purpose="tests.one")
        assert sign({"a": "é", "n": None}) == sign_link({"a": "é", "n": None}, purpose="tests.one")
    opened = [open_link(t, purpose="tests.one", max_age=60, expired=expired) for t in tokens]
    assert opened == [{"a": "0", "g": 0}, {"a": "1", "g": 1}, {"a": "2", "g": 2}]
    with pytest.raises(NotFound):
        open_link(tokens[0], purpose="tests.two", max_age=60, expired=expired)


def test_a_page_signer_signs_json_written_beforehand_as_sign_link_signs_its_payload() -> None:
    now = float(int(time.time()))
    with mock.patch("time.time", return_value=now):
        signer = PageSigner("tests.one")
        for payload in (
            {"a": "0b6b4c1e-8d0e-4c39-9a43-3b1f2f7d5e10", "g": 7},
            {"a": "é", "n": None},
        ):
            text = json.dumps(payload, separators=(",", ":"))
            assert signer.sign_json(text) == sign_link(payload, purpose="tests.one")
    token = signer.sign_json('{"a":"1","g":1}')
    assert open_link(token, purpose="tests.one", max_age=60, expired=expired) == {"a": "1", "g": 1}


def test_a_page_signers_links_are_as_old_as_the_page() -> None:
    made = float(int(time.time()))
    with mock.patch("time.time", return_value=made):
        sign = PageSigner("tests.one").sign_link
        as_made = sign_link({"a": "late"}, purpose="tests.one")
    with mock.patch("time.time", return_value=made + 30):
        late = sign({"a": "late"})
    assert late == as_made
    with mock.patch("time.time", return_value=made + 60):
        assert open_link(late, purpose="tests.one", max_age=60, expired=expired) == {"a": "late"}
    with mock.patch("time.time", return_value=made + 61), pytest.raises(PermissionDenied):
        open_link(late, purpose="tests.one", max_age=60, expired=expired)


@override_settings(SECRET_KEY="another-secret-key-for-this-test-only-0123456789")
def test_a_page_signer_signs_with_the_current_secret_key() -> None:
    token = PageSigner("tests.one").sign_link({"a": "1"})
    assert open_link(token, purpose="tests.one", max_age=60, expired=expired) == {"a": "1"}
    other_key = override_settings(SECRET_KEY="a-different-secret-key-again-0123456789-abcdef")
    with other_key, pytest.raises(NotFound):
        open_link(token, purpose="tests.one", max_age=60, expired=expired)


def test_a_page_signer_says_when_its_links_stop_opening() -> None:
    made = time.time()
    with mock.patch("time.time", return_value=made):
        signer = PageSigner("tests.one")
        token = signer.sign_link({"a": "1"})
    last = signer.expires_at(60).timestamp()
    assert int(made) + 60 == last <= made + 60
    with mock.patch("time.time", return_value=last):
        assert open_link(token, purpose="tests.one", max_age=60, expired=expired) == {"a": "1"}
    with mock.patch("time.time", return_value=last + 0.001), pytest.raises(PermissionDenied):
        open_link(token, purpose="tests.one", max_age=60, expired=expired)


def test_a_page_signers_links_are_keyed_once_and_encoded_by_binascii() -> None:
    # 500 links a page: no HMAC keyed again per link (hmac.digest), no trip through
    # signing.b64_encode's three Python calls for each base64.
    now = float(int(time.time()))
    payload = {"a": "0b6b4c1e-8d0e-4c39-9a43-3b1f2f7d5e10", "g": 7}
    with mock.patch("time.time", return_value=now):
        expected = sign_link(payload, purpose="tests.one")
        with (
            mock.patch("hmac.digest", side_effect=AssertionError("keyed per link")),
            mock.patch("django.core.signing.b64_encode", side_effect=AssertionError("b64")),
        ):
            signer = PageSigner("tests.one")
            text = json.dumps(payload, separators=(",", ":"))
            tokens = [signer.sign_json(text) for _ in range(2)]
    assert tokens == [expected, expected]
