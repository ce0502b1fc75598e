"""The HTTP SMS adapter against a loopback gateway speaking the eSMS wire format."""

from __future__ import annotations

import ssl
import threading
from typing import Any

import pytest

from auth import sms_gateway
from auth.sms import SmsError, send_sms
from tests.accounts.conftest import deliver_sms, register


def test_success_returns_the_gateway_sms_id_and_sends_the_wire_format(gateway) -> None:
    sms_id = send_sms("+84912345678", "123456 là mã xác thực", purpose="otp.register")
    assert len(gateway.messages) == 1
    sent = gateway.messages[0]
    assert sent["ApiKey"] == "test-api-key"
    assert sent["SecretKey"] == "test-secret"
    assert sent["Phone"] == "84912345678"
    assert sent["Content"] == "123456 la ma xac thuc"  # send_sms takes the diacritics off
    assert sent["Brandname"] == "DVCONG"
    assert sent["SmsType"] == "2"
    assert sent["IsUnicode"] == "0"  # GSM-7: 160 characters a segment
    assert len(sms_id) == 36


def test_a_text_gsm7_cannot_carry_goes_as_unicode(gateway) -> None:
    send_sms("+84912345678", "Hồ sơ 中文 €", purpose="notice.test")
    sent = gateway.messages[0]
    assert (sent["Content"], sent["IsUnicode"]) == ("Ho so 中文 €", "1")


@pytest.mark.parametrize(
    ("setting", "value", "code"),
    [
        ("SMS_API_KEY", "wrong", "101"),
        ("SMS_SECRET_KEY", "wrong", "101"),
        ("SMS_BRANDNAME", "OTHER", "104"),
    ],
)
def test_configuration_errors_are_not_retryable(gateway, settings, setting, value, code) -> None:
    setattr(settings, setting, value)
    with pytest.raises(SmsError) as caught:
        send_sms("+84912345678", "x", purpose="otp.register")
    assert f"CodeResult {code}" in str(caught.value)
    assert caught.value.retryable is False


def test_no_balance_is_103_and_not_retryable(gateway) -> None:
    gateway.balance = 0
    with pytest.raises(SmsError) as caught:
        send_sms("+84912345678", "x", purpose="otp.register")
    assert "CodeResult 103" in str(caught.value)
    assert caught.value.retryable is False


def test_unknown_error_99_is_retryable(gateway) -> None:
    gateway.force_code = "99"
    with pytest.raises(SmsError) as caught:
        send_sms("+84912345678", "x", purpose="otp.register")
    assert caught.value.retryable is True


def test_http_5xx_is_retryable(gateway) -> None:
    gateway.http_status = 502
    with pytest.raises(SmsError) as caught:
        send_sms("+84912345678", "x", purpose="otp.register")
    assert str(caught.value) == "SMS gateway HTTP 502"
    assert caught.value.retryable is True


def test_an_answer_that_is_not_json_is_retryable(gateway) -> None:
    gateway.garbage = True
    with pytest.raises(SmsError) as caught:
        send_sms("+84912345678", "x", purpose="otp.register")
    assert caught.value.retryable is True


def test_a_timeout_is_retryable(gateway, settings) -> None:
    settings.SMS_HTTP_TIMEOUT_SECONDS = 0.2
    gateway.delay = 1.0
    with pytest.raises(SmsError) as caught:
        send_sms("+84912345678", "x", purpose="otp.register")
    assert str(caught.value) == "SMS gateway timed out"
    assert caught.value.retryable is True


def test_a_gateway_failure_during_registration_is_the_jobs_not_the_requests(
    api, db, gateway
) -> None:
    """The sign-up is answered and kept (pending) while the gateway is down: the job
    that texts the code meets the failure, and is retried (tests/accounts/test_sms_jobs.py)."""
    from auth.models import OtpChallenge, User

    gateway.http_status = 503
    response = register(api)
    assert response.status_code == 202
    assert gateway.messages == []
    assert User.objects.get(phone="+84912345678").phone_verified_at is None
    assert OtpChallenge.objects.filter(pk=response.json()["challenge_id"]).exists()
    with pytest.raises(SmsError) as caught:
        deliver_sms()
    assert caught.value.retryable is True
    assert len(gateway.messages) == 1


def test_registration_through_the_gateway_texts_the_code(api, db, gateway) -> None:
    response = register(api)
    assert response.status_code == 202
    deliver_sms()
    assert gateway.messages[0]["Phone"] == "84912345678"
    assert "ma xac thuc dang ky" in gateway.messages[0]["Content"]
    assert gateway.messages[0]["IsUnicode"] == "0"


def test_messages_from_several_threads_share_one_client_and_one_tls_context(
    gateway, monkeypatch
) -> None:
    """A new client per SMS built a TLS context (certifi's bundle parsed) every time:
    the process keeps one client, shared by the request threads."""
    monkeypatch.setattr(sms_gateway, "_clients", {})
    built: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = real(*args, **kwargs)
        built.append(context)
        return context

    monkeypatch.setattr(ssl, "create_default_context", counting)
    sent: list[str] = []

    def send_two(number: int) -> None:
        for index in range(2):
            sent.append(send_sms(f"+849120000{number}{index}", "mã 123456", purpose="otp.test"))

    threads = [threading.Thread(target=send_two, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(sent) == 8
    assert len(gateway.messages) == 8
    assert len(built) == 1
    assert len(sms_gateway._clients) == 1
