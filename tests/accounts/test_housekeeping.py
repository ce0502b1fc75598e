"""Expired sign-in flows are deleted by the hourly job; live and recent ones stay."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

from auth.models import NationalSignIn, OtpChallenge
from auth.tasks import purge_expired_sign_in_flows
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PHONE = "+84912345678"


def challenge(expired_hours_ago: float) -> OtpChallenge:
    return OtpChallenge.objects.create(
        purpose="login",
        phone=PHONE,
        user=None,
        expires_at=timezone.now() - dt.timedelta(hours=expired_hours_ago),
    )


def national(expired_hours_ago: float, link: OtpChallenge | None = None) -> NationalSignIn:
    flow = NationalSignIn.objects.create(
        purpose="sign_in",
        state_hash=f"s{expired_hours_ago}",
        nonce=f"n{expired_hours_ago}",
        code_verifier="v" * 64,
        expires_at=timezone.now() - dt.timedelta(hours=expired_hours_ago),
    )
    if link is not None:
        NationalSignIn.objects.filter(pk=flow.pk).update(link_challenge=link, link_user=make_user())
    return flow


@override_settings(AUTH_FLOW_RETENTION_HOURS=24)
def test_flows_expired_longer_than_the_retention_are_deleted() -> None:
    old_challenge = challenge(expired_hours_ago=25)
    old_national = national(expired_hours_ago=30, link=old_challenge)
    recent_challenge = challenge(expired_hours_ago=23)  # inside the retention
    live_challenge = challenge(expired_hours_ago=-0.05)  # still usable
    recent_national = national(expired_hours_ago=1)

    deleted = purge_expired_sign_in_flows(timestamp=int(timezone.now().timestamp()))

    assert deleted == 2
    assert set(OtpChallenge.objects.values_list("pk", flat=True)) == {
        recent_challenge.pk,
        live_challenge.pk,
    }
    assert list(NationalSignIn.objects.values_list("pk", flat=True)) == [recent_national.pk]
    assert not NationalSignIn.objects.filter(pk=old_national.pk).exists()


def test_nothing_is_deleted_when_nothing_expired_long_enough() -> None:
    kept = [challenge(expired_hours_ago=1), challenge(expired_hours_ago=-0.05)]
    flow = national(expired_hours_ago=2)

    assert purge_expired_sign_in_flows(timestamp=0) == 0

    assert OtpChallenge.objects.count() == len(kept)
    assert NationalSignIn.objects.filter(pk=flow.pk).exists()
