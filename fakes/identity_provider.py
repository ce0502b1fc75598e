"""Fake national identity provider (VNeID through the portal's SSO): OpenID Connect.

It speaks the real wire format of an OpenID Connect provider: the discovery
document, a JWKS, the authorization endpoint (it signs the person in at once and
redirects to the client's redirect URI with `code` and `state`), the token
endpoint (authorization code grant with PKCE S256, `client_secret_post` or
`client_secret_basic`, OAuth 2 error bodies) and userinfo. ID tokens are RS256,
signed with a test key made at start; `rotate` adds a new signing key.

It can be told to misbehave (`mode`): wrong_audience, wrong_issuer, expired,
not_yet_valid, bad_signature, alg_none, hs256_public_key, unknown_kid,
nonce_mismatch, replay_code (a spent code is accepted again), replay_id_token
(the previous ID token, nonce included, is handed out again), down (503 with
its outage page on every route: a fault mode of fakes/server.py, as are
`fail_next`, whose `error` answers OAuth 2's `{"error": code}`, and `delay`).
The person it signs in (and their level, 1 or 2) is settable; userinfo sends
their attributes but the level, and leaves out any set to None (e.g.
`set_person(phone_number_verified=None)`: a provider that does not say whether
it verified the number; `False`: one that says it did not).

In tests: `with FakeIdentityProvider() as idp:` (a thread on loopback). As its
own process: `python -m fakes.identity_provider --port 9300` (`--port 0` picks a
free port; the first line printed is the issuer URL), controlled over HTTP:
besides the controls every fake has, `POST /_fake/person`, `POST /_fake/mode`,
`POST /_fake/rotate`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from fakes.server import FakeServer, Fault, Request, Response, json_response, main

MODES = {
    "",
    "wrong_audience",
    "wrong_issuer",
    "expired",
    "not_yet_valid",
    "bad_signature",
    "alg_none",
    "hs256_public_key",
    "unknown_kid",
    "nonce_mismatch",
    "replay_code",
    "replay_id_token",
    "down",
}
ACR = {1: "urn:vn:vneid:loa:1", 2: "urn:vn:vneid:loa:2"}
DEFAULT_CLIENT_ID = "dichvucong-app"
DEFAULT_CLIENT_SECRET = "dev-national-id-secret"  # nosec B105 # the fake's own
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
NO_STORE = {"Cache-Control": "no-store"}


def default_person() -> dict[str, Any]:
    return {
        "sub": "vneid-0001",
        "name": "Phạm Minh Châu",
        "phone_number": "+84987654321",
        "phone_number_verified": True,
        "citizen_id": "001190012345",
        "birthdate": "1990-05-17",
        "level": 2,
    }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _half_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return _b64url(digest[: len(digest) // 2])


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    code_challenge: str
    person: dict[str, Any]
    used: bool = False


@dataclass
class _State:
    person: dict[str, Any] = field(default_factory=default_person)
    mode: str = ""
    grants: dict[str, _Grant] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: int = 0
    last_id_token: str = ""


def _down() -> Fault:
    return Fault("error", status=503)  # answered with the provider's outage page


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(body).encode(), {**NO_STORE, **(headers or {})}, JSON)


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, text.encode(), {**NO_STORE, **(headers or {})}, TEXT)


class FakeIdentityProvider(FakeServer):
    """Start with `start()` (or as a context manager); thread-safe."""

    name = "fake-identity-provider"
    default_port = 9300

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
    ) -> None:
        super().__init__(host, port)
        self.client_id = client_id
        self.client_secret = client_secret
        self._state = _State()
        self._keys = [self._new_key()]
        self._jwks_count = 0

    # --- control ----------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return self.base_url

    def set_person(self, **person: Any) -> None:
        with self.lock:
            self._state.person = {**default_person(), **person}

    def set_mode(self, mode: str) -> None:
        """One mode at a time; "down" is the server's outage fault mode (`fault_mode`)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        with self.lock:
            self._state.mode = "" if mode == "down" else mode
            if mode == "down":
                self.fault_mode = _down()
            elif self.fault_mode == _down():
                self.fault_mode = None

    def rotate(self, *, keep_old: bool = True) -> str:
        """A new signing key (published first); returns its kid."""
        key = self._new_key()
        with self.lock:
            self._keys = [key, *self._keys] if keep_old else [key]
        return str(key.kid)

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._state = _State()

    @property
    def token_requests(self) -> int:
        return self._state.token_requests

    @property
    def jwks_requests(self) -> int:
        return self._jwks_count

    # --- protocol ---------------------------------------------------------------------

    @staticmethod
    def _new_key() -> RSAKey:
        return RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8)}, private=True)

    def discovery(self) -> dict[str, Any]:
        issuer = self.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "phone", "citizen_id"],
            "acr_values_supported": list(ACR.values()),
            "claims_supported": [
                "sub",
                "name",
                "phone_number",
                "phone_number_verified",
                "citizen_id",
                "birthdate",
                "acr",
            ],
        }

    def jwks(self) -> dict[str, Any]:
        with self.lock:
            self._jwks_count += 1
            return {"keys": [key.as_dict(private=False) for key in self._keys]}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """Sign the configured person in and send the browser back with a code."""
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return 400, {}, "unknown client or missing redirect_uri"
        state = query.get("state", "")

        def back(params: dict[str, str]) -> tuple[int, dict[str, str], str]:
            separator = "&" if urlsplit(redirect_uri).query else "?"
            return 302, {"Location": f"{redirect_uri}{separator}{urlencode(params)}"}, ""

        if query.get("response_type") != "code":
            return back({"error": "unsupported_response_type", "state": state})
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return back({"error": "invalid_request", "state": state})
        code = secrets.token_urlsafe(24)
        with self.lock:
            self._state.grants[code] = _Grant(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                nonce=query.get("nonce", ""),
                code_challenge=query["code_challenge"],
                person=dict(self._state.person),
            )
        return back({"code": code, "state": state})

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        if client_id != self.client_id or not hmac.compare_digest(secret, self.client_secret):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self.lock:
            self._state.token_requests += 1
            grant = self._state.grants.get(form.get("code", ""))
            mode = self._state.mode
            if grant is None or (grant.used and mode != "replay_code"):
                return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
            grant.used = True
        if form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        verifier = form.get("code_verifier", "")
        if _b64url(hashlib.sha256(verifier.encode()).digest()) != grant.code_challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        access_token = secrets.token_urlsafe(32)
        id_token = self.id_token(grant, access_token, mode)
        with self.lock:
            self._state.access_tokens[access_token] = grant.person
            if mode == "replay_id_token" and self._state.last_id_token:
                id_token = self._state.last_id_token
            self._state.last_id_token = id_token
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",  # nosec B105 # OAuth token type
            "expires_in": 300,
            "scope": "openid profile phone citizen_id",
            "id_token": id_token,
        }

    def id_token(self, grant: _Grant, access_token: str, mode: str) -> str:
        now = int(time.time())
        person = grant.person
        claims: dict[str, Any] = {
            "iss": "https://attacker.example" if mode == "wrong_issuer" else self.issuer,
            "sub": person["sub"],
            "aud": "another-client" if mode == "wrong_audience" else grant.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "nonce": "not-the-nonce-you-sent" if mode == "nonce_mismatch" else grant.nonce,
            "acr": ACR.get(int(person["level"]), str(person["level"])),
            "at_hash": _half_hash(access_token),
            "name": person["name"],
        }
        if mode == "expired":
            claims.update(iat=now - 1200, exp=now - 600, auth_time=now - 1200)
        if mode == "not_yet_valid":
            claims.update(nbf=now + 600)
        with self.lock:
            key = self._keys[0]
        if mode == "unknown_kid":
            key = self._new_key()  # never published
        if mode == "alg_none":
            header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
            return f"{header}.{_b64url(json.dumps(claims).encode())}."
        if mode == "hs256_public_key":
            # The classic confusion attack: HMAC keyed with the published public key.
            secret = key.as_pem(private=False)
            header = _b64url(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
            body = f"{header}.{_b64url(json.dumps(claims).encode())}"
            mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
            return f"{body}.{_b64url(mac)}"
        token = jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
        if mode == "bad_signature":
            head, payload, signature = token.split(".")
            tail = "A" * 6 if signature[-6:] != "A" * 6 else "B" * 6
            token = f"{head}.{payload}.{signature[:-6]}{tail}"
        return token

    def userinfo(self, authorization: str) -> tuple[int, dict[str, Any]]:
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        with self.lock:
            person = self._state.access_tokens.get(token)
        if person is None:
            return 401, {"error": "invalid_token"}
        # An attribute set to None is not sent (OpenID Connect leaves unknown claims out).
        return 200, {k: v for k, v in person.items() if k != "level" and v is not None}

    # --- HTTP -------------------------------------------------------------------------

    def error_response(self, status: int, code: str) -> Response:
        return _json(status, {"error": code})  # OAuth 2's error body

    def error_page(self, status: int) -> Response:
        return _text(status, "service unavailable")

    def handle(self, request: Request) -> Response | None:
        authorization = request.header("Authorization")
        if request.method == "GET":
            if request.path == "/.well-known/openid-configuration":
                return _json(200, self.discovery())
            if request.path == "/jwks":
                return _json(200, self.jwks())
            if request.path == "/authorize":
                status, headers, text = self.authorize({k: v[0] for k, v in request.query.items()})
                return _text(status, text, headers)
            if request.path == "/userinfo":
                return _json(*self.userinfo(authorization))
        if request.method == "POST" and request.path == "/token":
            form = {k: v[0] for k, v in request.form().items()}
            return _json(*self.token(form, authorization))
        return _json(404, {"error": "not_found"})

    def control(self, request: Request) -> Response | None:
        if request.method != "POST":
            return None
        if request.path == "/_fake/person":
            self.set_person(**request.json_object())
        elif request.path == "/_fake/mode":
            self.set_mode(str(request.json_object().get("mode", "")))
        elif request.path == "/_fake/rotate":
            keep_old = bool(request.json_object().get("keep_old", True))
            return json_response(200, {"kid": self.rotate(keep_old=keep_old)})
        else:
            return None
        return json_response(200, {"ok": True})

    # --- command line ------------------------------------------------------------------

    def banner(self) -> str:
        return (
            f"{self.issuer}\n"  # the first line is the issuer
            "Fake national identity provider. Start the backend with:\n"
            f"  NATIONAL_ID_ISSUER={self.issuer} NATIONAL_ID_CLIENT_ID={self.client_id} "
            f"NATIONAL_ID_CLIENT_SECRET={self.client_secret}\nCtrl-C stops."
        )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
        parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
        parser.add_argument("--level", type=int, choices=(1, 2), default=2)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> FakeIdentityProvider:
        provider = cls(
            args.host, args.port, client_id=args.client_id, client_secret=args.client_secret
        )
        provider.set_person(level=args.level)
        return provider


if __name__ == "__main__":
    main(FakeIdentityProvider)
