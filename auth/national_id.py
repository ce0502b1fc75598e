"""OpenID Connect client of the national identity provider (VNeID through the
national public service portal's single sign-on).

Authlib does the protocol work: the authorization URL with PKCE (S256), the
code exchange (`OAuth2Session`), and the ID token's claims (`CodeIDToken`:
issuer, audience, expiry, not-before, nonce, `at_hash`); its JOSE library
(joserfc, which Authlib's own OpenID client uses) checks the signature against
the provider's JWKS. Nothing here trusts the token's header: the algorithms
are ours (asymmetric only, so `alg: none` or HS256 signed with the public key
never verify), and a `kid` we do not know makes us fetch the JWKS once more
(the provider rotated its keys), then refuse.

The discovery document and the JWKS are cached (NATIONAL_ID_METADATA_CACHE_SECONDS).
Every failure is a `NationalIdError` with a stable reason; the provider being
unreachable or answering 5xx is `ProviderUnavailable`.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from django.conf import settings
from django.core.cache import cache
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

logger = logging.getLogger(__name__)

# Asymmetric algorithms only: a token naming anything else is refused before any key is tried.
ID_TOKEN_ALGORITHMS = ["RS256", "PS256", "ES256"]
# Level of assurance (`acr`) of the national identity: VNeID level 1 (registered
# online) and level 2 (verified in person with the chip ID card).
ACR_LEVELS = {"urn:vn:vneid:loa:1": 1, "urn:vn:vneid:loa:2": 2}
LEVEL_ACR = {level: acr for acr, level in ACR_LEVELS.items()}
_METADATA_KEY = "national-id:metadata"
_JWKS_KEY = "national-id:jwks"
REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


class NationalIdError(Exception):
    """The provider's answer cannot be trusted; `reason` says why (logs and error codes)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ProviderUnavailable(NationalIdError):
    def __init__(self, reason: str = "provider_unavailable") -> None:
        super().__init__(reason)


def enabled() -> bool:
    return bool(settings.NATIONAL_ID_ISSUER)


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=settings.NATIONAL_ID_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise ProviderUnavailable() from exc
    if response.status_code >= 500:
        raise ProviderUnavailable()
    if response.status_code != 200:
        raise NationalIdError("provider_error")
    try:
        document = response.json()
    except ValueError as exc:
        raise NationalIdError("provider_error") from exc
    if not isinstance(document, dict):
        raise NationalIdError("provider_error")
    return document


def metadata() -> dict[str, Any]:
    """The provider's discovery document (cached); its issuer must be the configured one."""
    document = cache.get(_METADATA_KEY)
    if document is None:
        issuer = settings.NATIONAL_ID_ISSUER
        document = _get_json(f"{issuer}/.well-known/openid-configuration")
        if document.get("issuer") != issuer or any(
            not isinstance(document.get(name), str) for name in REQUIRED_METADATA
        ):
            raise NationalIdError("bad_discovery_document")
        cache.set(_METADATA_KEY, document, settings.NATIONAL_ID_METADATA_CACHE_SECONDS)
    return dict(document)


def key_set(*, refresh: bool = False) -> KeySet:
    """The provider's signing keys (cached; `refresh` fetches them again)."""
    jwks = None if refresh else cache.get(_JWKS_KEY)
    if jwks is None:
        jwks = _get_json(metadata()["jwks_uri"])
        cache.set(_JWKS_KEY, jwks, settings.NATIONAL_ID_METADATA_CACHE_SECONDS)
    try:
        return KeySet.import_key_set(jwks)  # type: ignore[arg-type]  # checked by joserfc
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise NationalIdError("bad_jwks") from exc


def _session(**kwargs: Any) -> OAuth2Session:
    return OAuth2Session(
        client_id=settings.NATIONAL_ID_CLIENT_ID,
        client_secret=settings.NATIONAL_ID_CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_post",  # noqa: S106  # nosec B106
        redirect_uri=settings.NATIONAL_ID_REDIRECT_URI,
        scope=settings.NATIONAL_ID_SCOPES,
        code_challenge_method="S256",
        **kwargs,
    )


def authorization_url(*, state: str, nonce: str, code_verifier: str, min_level: int) -> str:
    """Where the app sends the browser: the provider's sign-in page for this flow."""
    endpoint = metadata()["authorization_endpoint"]
    with _session() as session:
        url, _state = session.create_authorization_url(
            endpoint,
            state=state,
            nonce=nonce,
            code_verifier=code_verifier,
            acr_values=" ".join(LEVEL_ACR[level] for level in (2, 1) if level >= min_level),
            prompt="login",
        )
    return str(url)


def exchange_code(*, code: str, code_verifier: str) -> dict[str, Any]:
    """The token response for an authorization code (PKCE verifier included)."""
    endpoint = metadata()["token_endpoint"]
    with _session() as session:
        try:
            token = session.fetch_token(
                endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                timeout=settings.NATIONAL_ID_TIMEOUT_SECONDS,
            )
        except OAuthError as exc:
            # The provider refused the code: spent, expired, or not bound to this verifier.
            logger.info("national id: token endpoint refused the code (%s)", exc.error)
            raise NationalIdError("code_rejected") from exc
        except requests.RequestException as exc:
            raise ProviderUnavailable() from exc
        except ValueError as exc:  # a 5xx page that is not JSON, or a body without a token
            raise ProviderUnavailable() from exc
    if not isinstance(token.get("id_token"), str) or not token.get("access_token"):
        raise NationalIdError("no_id_token")
    return dict(token)


def _decode(id_token: str, keys: KeySet) -> Any:
    return jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)


def validate_id_token(id_token: str, *, nonce: str, access_token: str) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, times and nonce hold."""
    try:
        try:
            token = _decode(id_token, key_set())
        except InvalidKeyIdError:
            # A key we have not seen: the provider may have rotated. Once, then refuse.
            token = _decode(id_token, key_set(refresh=True))
    except InvalidKeyIdError as exc:
        raise NationalIdError("unknown_key") from exc
    except JoseError as exc:
        raise NationalIdError(f"bad_signature:{exc.error}") from exc
    except ValueError as exc:  # not a JWS at all
        raise NationalIdError("bad_signature:malformed") from exc
    claims = CodeIDToken(
        token.claims,
        token.header,
        options={
            "iss": {"essential": True, "value": settings.NATIONAL_ID_ISSUER},
            "aud": {"essential": True, "value": settings.NATIONAL_ID_CLIENT_ID},
            "nonce": {"essential": True},
            "acr": {"essential": True},
        },
        params={
            "nonce": nonce,
            "client_id": settings.NATIONAL_ID_CLIENT_ID,
            "access_token": access_token,
        },
    )
    try:
        claims.validate(leeway=settings.NATIONAL_ID_CLOCK_SKEW_SECONDS)
    except JoseError as exc:
        raise NationalIdError(f"bad_claims:{exc.error}:{getattr(exc, 'claim', '')}") from exc
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise NationalIdError("bad_claims:sub")
    return dict(claims)


def level_of(claims: dict[str, Any]) -> int:
    """The identity level the token asserts (0 when its `acr` is not one we know)."""
    return ACR_LEVELS.get(str(claims.get("acr", "")), 0)


def userinfo(*, access_token: str, subject: str) -> dict[str, Any]:
    """The person's attributes; they must describe the ID token's subject."""
    endpoint = metadata().get("userinfo_endpoint")
    if not isinstance(endpoint, str):
        return {}
    try:
        response = requests.get(
            endpoint,
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=settings.NATIONAL_ID_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise ProviderUnavailable() from exc
    if response.status_code >= 500:
        raise ProviderUnavailable()
    try:
        info = response.json() if response.status_code == 200 else None
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise NationalIdError("userinfo_error")
    if info.get("sub") != subject:
        raise NationalIdError("userinfo_subject_mismatch")
    return info
