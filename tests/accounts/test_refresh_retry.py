"""A refresh retried within REFRESH_TOKEN_RETRY_SECONDS (its answer was lost on a
flaky network, or the app refreshed from two requests at once) gets the same pair
back; any other reuse of a spent refresh token still ends the session."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db.models import F

from auth.models import DeviceSession, RefreshToken
from tests.concurrency import in_threads
from tests.conftest import ApiClient, make_user, sign_in

REFRESH = "/api/v1/auth/token/refresh"


def _refresh(token: str) -> Any:
    return ApiClient().post(REFRESH, {"refresh_token": token})


def _age_spent_tokens(seconds: int) -> None:
    RefreshToken.objects.filter(used_at__isnull=False).update(
        used_at=F("used_at") - dt.timedelta(seconds=seconds)
    )


@pytest.mark.django_db
def test_a_retry_within_the_window_gets_the_same_pair_and_the_session_lives(settings) -> None:
    settings.REFRESH_TOKEN_RETRY_SECONDS = 30
    session, tokens = sign_in(make_user())
    first = _refresh(tokens.refresh_token).json()
    _age_spent_tokens(29)

    retry = _refresh(tokens.refresh_token)

    assert retry.status_code == 200, retry
    body = retry.json()
    assert (body["access_token"], body["refresh_token"]) == (
        first["access_token"],
        first["refresh_token"],
    )
    # What is left of the access token's lifetime, not a fresh one.
    assert body["expires_in"] <= first["expires_in"] - 29
    session.refresh_from_db()
    assert session.revoked_at is None
    assert ApiClient(body["access_token"]).get("/api/v1/auth/me").status_code == 200
    # The pair works as any other: its refresh token once.
    assert _refresh(body["refresh_token"]).status_code == 200
    assert RefreshToken.objects.filter(session=session).count() == 3


@pytest.mark.django_db
def test_a_retry_after_the_window_ends_the_session(settings) -> None:
    settings.REFRESH_TOKEN_RETRY_SECONDS = 30
    session, tokens = sign_in(make_user())
    first = _refresh(tokens.refresh_token).json()
    _age_spent_tokens(31)

    retry = _refresh(tokens.refresh_token)

    assert retry.status_code == 401
    assert retry.json()["code"] == "refresh_token_reused"
    session.refresh_from_db()
    assert session.revoked_reason == "refresh_reuse"
    assert ApiClient(first["access_token"]).get("/api/v1/auth/me").status_code == 401


@pytest.mark.django_db
def test_a_retry_once_the_new_pair_was_spent_ends_the_session(settings) -> None:
    # Whoever comes second with the old token (the owner moved on, or a copy did)
    # holds the chain no more.
    settings.REFRESH_TOKEN_RETRY_SECONDS = 30
    session, tokens = sign_in(make_user())
    first = _refresh(tokens.refresh_token).json()
    second = _refresh(first["refresh_token"]).json()

    retry = _refresh(tokens.refresh_token)

    assert retry.json()["code"] == "refresh_token_reused"
    session.refresh_from_db()
    assert session.revoked_reason == "refresh_reuse"
    assert _refresh(second["refresh_token"]).json()["code"] == "invalid_refresh_token"


@pytest.mark.django_db
def test_with_no_window_every_reuse_ends_the_session(settings) -> None:
    settings.REFRESH_TOKEN_RETRY_SECONDS = 0
    session, tokens = sign_in(make_user())
    _refresh(tokens.refresh_token)

    assert _refresh(tokens.refresh_token).json()["code"] == "refresh_token_reused"
    session.refresh_from_db()
    assert session.revoked_reason == "refresh_reuse"
    assert RefreshToken.objects.exclude(successor_sealed=None).count() == 0


@pytest.mark.django_db
def test_the_database_alone_cannot_open_the_kept_pair(settings) -> None:
    settings.REFRESH_TOKEN_RETRY_SECONDS = 30
    _, tokens = sign_in(make_user())
    first = _refresh(tokens.refresh_token).json()
    spent = RefreshToken.objects.get(used_at__isnull=False)
    sealed = bytes(spent.successor_sealed)
    assert first["refresh_token"].encode() not in sealed
    assert first["access_token"].encode() not in sealed
    # A different token (whose hash is not the key) gets nothing back either.
    other_session, other = sign_in(make_user("+84987000111"))
    RefreshToken.objects.filter(session=other_session).update(
        successor_sealed=sealed, used_at=spent.used_at
    )
    assert _refresh(other.refresh_token).json()["code"] == "refresh_token_reused"


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_both_get_the_same_pair(settings) -> None:
    # Whichever takes the token's row lock first, the other is a retry of it.
    settings.REFRESH_TOKEN_RETRY_SECONDS = 30
    session, tokens = sign_in(make_user())

    answers = in_threads(*[lambda: _refresh(tokens.refresh_token)] * 2)

    assert [answer.status_code for answer in answers] == [200, 200]
    pairs = {(a.json()["access_token"], a.json()["refresh_token"]) for a in answers}
    assert len(pairs) == 1
    assert DeviceSession.objects.get(pk=session.pk).revoked_at is None
