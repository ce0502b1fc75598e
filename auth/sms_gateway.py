"""Brand-name SMS through an eSMS.vn-style JSON gateway (SMS_BACKEND=http).

Wire format (`SendMultipleMessage_V4_post_json`): POST a JSON object
`{"ApiKey", "SecretKey", "Phone", "Content", "Brandname", "SmsType": "2",
"IsUnicode", "RequestId"}`; the reply is JSON with `CodeResult` "100" and
an `SMSID` on success, another `CodeResult` (and usually `ErrorMessage`) on
failure. Type 2 is the customer-care brand-name channel used for OTPs.
`IsUnicode` is "0" (GSM-7, 160 characters a segment) for the unaccented texts
`send_sms` passes, "1" (UCS-2, 70) only for a text GSM-7 cannot carry.
"""

from __future__ import annotations

import logging
import threading

import httpx
from django.conf import settings

from auth.sms import SmsError, SmsMessage, gsm7_septets

logger = logging.getLogger(__name__)

SUCCESS = "100"
# Gateway codes worth retrying (its own transient failure); the rest are
# configuration or account problems that a retry cannot fix.
RETRYABLE_CODES = {"99"}
KNOWN_ERRORS = {
    "99": "unknown gateway error",
    "101": "wrong ApiKey or SecretKey",
    "102": "account locked",
    "103": "insufficient balance",
    "104": "brand name not registered",
    "118": "message type not allowed",
    "119": "brand name not allowed for this message type",
}


_clients: dict[float, httpx.Client] = {}
_clients_lock = threading.Lock()


def _client(timeout: float) -> httpx.Client:
    """One pooled client per process (and timeout): a new client per SMS built a TLS
    context every time, about 70 % of an OTP request's server time in the benchmark.
    httpx's client is safe to share between threads."""
    with _clients_lock:
        client = _clients.get(timeout)
        if client is None:
            client = _clients[timeout] = httpx.Client(timeout=timeout)
        return client


class HttpSmsBackend:
    def __init__(self) -> None:
        self.url = settings.SMS_HTTP_URL
        self.timeout = settings.SMS_HTTP_TIMEOUT_SECONDS

    def payload(self, message: SmsMessage) -> dict[str, str]:
        return {
            "ApiKey": settings.SMS_API_KEY,
            "SecretKey": settings.SMS_SECRET_KEY,
            "Phone": message.to.lstrip("+"),
            "Content": message.text,
            "Brandname": settings.SMS_BRANDNAME,
            "SmsType": "2",
            "IsUnicode": "0" if gsm7_septets(message.text) is not None else "1",
            "RequestId": message.id,
        }

    def send(self, message: SmsMessage) -> str:
        try:
            response = _client(self.timeout).post(self.url, json=self.payload(message))
        except httpx.TimeoutException as exc:
            raise SmsError("SMS gateway timed out", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise SmsError(
                f"SMS gateway unreachable: {type(exc).__name__}", retryable=True
            ) from exc
        if response.status_code >= 500:
            raise SmsError(f"SMS gateway HTTP {response.status_code}", retryable=True)
        if response.status_code >= 400:
            raise SmsError(f"SMS gateway HTTP {response.status_code}", retryable=False)
        try:
            body = response.json()
        except ValueError as exc:
            raise SmsError(
                "SMS gateway answered something that is not JSON", retryable=True
            ) from exc
        code = str(body.get("CodeResult", "")) if isinstance(body, dict) else ""
        if code == SUCCESS and body.get("SMSID"):
            return str(body["SMSID"])
        reason = KNOWN_ERRORS.get(code, str(body.get("ErrorMessage") or "unexpected reply"))
        logger.warning("SMS gateway refused message %s: CodeResult=%s", message.id, code)
        raise SmsError(
            f"SMS gateway CodeResult {code}: {reason}", retryable=code in RETRYABLE_CODES
        )
