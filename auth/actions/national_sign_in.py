"""National sign-in (VNeID through the national portal's SSO): start, callback, linking.

The flow (mobile_api_docs/national-sign-in.md): `start` stores a flow row with
a random `state` (hashed), `nonce` and PKCE verifier and returns the provider's
authorization URL; the app opens it in the system browser; the provider sends
the browser back to the app link with `code` and `state`; the app posts both
to `complete`, which spends the flow, exchanges the code, checks the ID token
(auth/national_id.py) and then:

- an identity already linked signs its account in;
- an identity new to us whose verified phone number has an account (or any
  identity, for a signed-in user who asked to link) links only after that
  account proves control: an SMS code to its verified phone, or TOTP
  (`verify_link`);
- otherwise a new account is made from the identity (its phone is verified by
  the provider), with no password until the citizen sets one.

Only a number the provider says it verified (`phone_number_verified` true) is
used; a disabled account found by it is answered `account_disabled`, as a linked
one is.

A national identity is linked to at most one account (a unique constraint); a
citizen ID it asserts replaces a self-declared one and is marked verified, and
the same number held by another account is flagged for support
(CitizenIdConflict, asserted by the national identity), never taken from it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth import national_id, sms_codes
from auth.actions import citizen_id_conflicts
from auth.actions.challenges import consume_challenge, issue_code, new_challenge, verify_code
from auth.actions.phone_numbers import free_phone_number
from auth.actions.second_factor import available_methods, set_up_after, verify_factor
from auth.actions.sign_in import DeviceInfo, sign_device_in
from auth.models import (
    AuthMethod,
    CitizenIdConflict,
    DeviceSession,
    NationalIdentity,
    NationalSignIn,
    OtpChallenge,
    User,
)
from auth.phone import mask_phone, parse_phone
from auth.tokens import TokenPair
from backend.errors import (
    ApiError,
    Conflict,
    NotAuthenticated,
    PermissionDenied,
    ServiceUnavailable,
    Unprocessable,
)

logger = logging.getLogger(__name__)

NATIONAL_METHODS = {1: AuthMethod.NATIONAL_1, 2: AuthMethod.NATIONAL_2}


@dataclass(frozen=True)
class Started:
    flow: NationalSignIn
    authorization_url: str
    state: str


@dataclass(frozen=True)
class Outcome:
    """Either the device is signed in (`tokens`) or the account must prove control first."""

    tokens: TokenPair | None = None
    session: DeviceSession | None = None
    link_flow: NationalSignIn | None = None
    link_challenge: OtpChallenge | None = None
    methods: tuple[str, ...] = ()
    created_account: bool = False


def _hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _disabled() -> ServiceUnavailable:
    return ServiceUnavailable(
        "national_id_disabled", _("Sign-in with the national identity (VNeID) is not available.")
    )


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "national_id_unavailable",
        _(
            "The national identity service (VNeID) cannot be reached. Try again later, "
            "or sign in with your phone number."
        ),
        headers={"Retry-After": "60"},
    )


def _account_disabled() -> PermissionDenied:
    return PermissionDenied("account_disabled", _("This account is disabled."))


def _state_mismatch() -> ApiError:
    return ApiError(
        "national_id_state_mismatch",
        _("This sign-in was not started here or has already been used. Start again."),
        status=400,
    )


def _refused(reason: str) -> ApiError:
    # The reason is for our logs; the app only needs to start again.
    logger.warning("national sign-in refused: %s", reason)
    return ApiError(
        "national_id_refused",
        _("The national identity service's answer could not be verified. Start again."),
        status=400,
        details={"reason": reason.split(":", 1)[0]},
    )


def _provider_call(call: Any, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except national_id.ProviderUnavailable as exc:
        logger.warning("national identity provider unavailable (%s)", exc.reason)
        raise _unavailable() from exc
    except national_id.NationalIdError as exc:
        raise _refused(exc.reason) from exc


# --- Start ----------------------------------------------------------------------------


def start(
    *,
    purpose: str,
    device: DeviceInfo,
    ip: str,
    user: User | None = None,
    session: DeviceSession | None = None,
    min_level: int = 1,
) -> Started:
    """A new flow: its row and the authorization URL the app opens in the browser.

    A link flow is started by `user`'s `session`: when it signed in is kept, and the
    factors set up since then are no proof for the link (`proof_methods`)."""
    if not national_id.enabled():
        raise _disabled()
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    code_verifier = secrets.token_urlsafe(64)
    url = _provider_call(
        national_id.authorization_url,
        state=state,
        nonce=nonce,
        code_verifier=code_verifier,
        min_level=min_level,
    )
    now = timezone.now()
    flow = NationalSignIn.objects.create(
        purpose=purpose,
        state_hash=_hash_state(state),
        nonce=nonce,
        code_verifier=code_verifier,
        min_level=min_level,
        user=user,
        signed_in_at=session.authenticated_at if session is not None else None,
        device={k: v for k, v in asdict(device).items() if k != "device_key"},
        ip=ip or None,
        expires_at=now + dt.timedelta(seconds=settings.NATIONAL_ID_FLOW_TTL_SECONDS),
    )
    return Started(flow=flow, authorization_url=url, state=state)


# --- Callback -------------------------------------------------------------------------


def _spend_flow(state: str, *, purpose: str, user: User | None) -> NationalSignIn:
    """Mark the flow of `state` as called back (committed before the provider is asked,
    so a code or state can never be tried twice, whatever happens next)."""
    with transaction.atomic():
        flow = (
            NationalSignIn.objects.select_for_update()
            .filter(state_hash=_hash_state(state), callback_at=None)
            .first()
        )
        if flow is None or flow.purpose != purpose:
            raise _state_mismatch()
        # A link flow belongs to the signed-in account that started it.
        if flow.purpose == NationalSignIn.Purpose.LINK and (
            user is None or flow.user_id != user.pk
        ):
            raise _state_mismatch()
        flow.callback_at = timezone.now()
        flow.save(update_fields=["callback_at"])
    if flow.expires_at <= flow.callback_at:
        raise ApiError(
            "national_id_flow_expired", _("This sign-in took too long. Start again."), status=400
        )
    return flow


def _claims_from_provider(flow: NationalSignIn, code: str) -> dict[str, Any]:
    token = _provider_call(national_id.exchange_code, code=code, code_verifier=flow.code_verifier)
    claims = _provider_call(
        national_id.validate_id_token,
        id_token=token["id_token"],
        nonce=flow.nonce,
        access_token=token["access_token"],
    )
    level = national_id.level_of(claims)
    if level < max(1, flow.min_level):
        logger.info("national sign-in %s: level %s below %s", flow.pk, level, flow.min_level)
        raise PermissionDenied(
            "national_id_level_too_low",
            _("Your national identity does not have the level this needs (level %(level)s).")
            % {"level": max(1, flow.min_level)},
            details={"required_level": max(1, flow.min_level), "level": level},
        )
    info = _provider_call(
        national_id.userinfo, access_token=token["access_token"], subject=claims["sub"]
    )
    # A number the provider does not say it verified (OpenID Connect's optional
    # `phone_number_verified`: only JSON `true` counts, absent is not) proves nothing:
    # it is not used at all, as if the identity had none.
    verified = info.get("phone_number_verified") is True
    if info.get("phone_number") and not verified:
        logger.info("national sign-in %s: the provider's number is not verified", flow.pk)
    return {
        "iss": claims["iss"],
        "sub": claims["sub"],
        "level": level,
        "name": str(info.get("name") or claims.get("name") or "")[:150],
        "phone_number": str(info.get("phone_number") or "") if verified else "",
        "citizen_id": str(info.get("citizen_id") or ""),
        "birthdate": str(info.get("birthdate") or ""),
    }


def complete(
    *, state: str, code: str, ip: str, user: User | None = None, language: str | None = None
) -> Outcome:
    """The browser came back with `code` and `state`: sign in, link, or ask for proof.

    With `user` (the signed-in caller) only that user's link flows are accepted;
    without, only sign-in flows. `language` (the request's) becomes the `language` of
    an account made here (see `User.new_account_language`); an existing one keeps its own."""
    if not national_id.enabled():
        raise _disabled()
    purpose = NationalSignIn.Purpose.LINK if user is not None else NationalSignIn.Purpose.SIGN_IN
    flow = _spend_flow(state, purpose=purpose, user=user)
    claims = _claims_from_provider(flow, code)
    with transaction.atomic():
        identity = (
            NationalIdentity.objects.select_for_update()
            .select_related("user")
            .filter(issuer=claims["iss"], subject=claims["sub"])
            .first()
        )
        if flow.purpose == NationalSignIn.Purpose.LINK:
            if flow.user is None:  # link flows always have their account
                raise RuntimeError("link flow without an account")
            return _ask_for_proof(flow, flow.user, claims, identity, ip)
        if identity is not None:
            if not identity.user.is_active:
                raise _account_disabled()
            return _sign_in(flow, identity.user, claims, ip)
        phone = _claimed_phone(claims)
        existing = (
            User.objects.filter(phone=phone, phone_verified_at__isnull=False).first()
            if phone
            else None
        )
        if existing is not None:
            # The number's account, disabled, is answered as a linked one would be: no
            # code is sent to it, nothing is linked to it, no account is made beside it.
            if not existing.is_active:
                raise _account_disabled()
            return _ask_for_proof(flow, existing, claims, None, ip)
        return _create_account(flow, phone, claims, ip, language)


def _claimed_phone(claims: dict[str, Any]) -> str | None:
    try:
        return parse_phone(claims["phone_number"]) if claims["phone_number"] else None
    except ApiError:
        return None


def _already_linked_elsewhere() -> Conflict:
    return Conflict(
        "national_id_linked_elsewhere",
        _("This national identity is already linked to another account."),
    )


def _ask_for_proof(
    flow: NationalSignIn,
    account: User,
    claims: dict[str, Any],
    identity: NationalIdentity | None,
    ip: str,
) -> Outcome:
    """The existing account proves control before the identity is linked to it."""
    if identity is not None and identity.user_id != account.pk:
        raise _already_linked_elsewhere()
    linked = NationalIdentity.objects.filter(user=account).first()
    if linked is not None and (linked.issuer, linked.subject) != (claims["iss"], claims["sub"]):
        raise Conflict(
            "national_id_account_has_other",
            _("This account is already linked to another national identity."),
        )
    if identity is not None:  # linking what is already linked: just sign in
        return _sign_in(flow, account, claims, ip)
    methods = proof_methods(flow, account)
    challenge = new_challenge(OtpChallenge.Purpose.LINK_NATIONAL, account.phone, account, ip)
    issue_code(challenge, ip=ip)
    flow.link_user = account
    flow.link_challenge = challenge
    flow.claims = claims
    flow.save(update_fields=["link_user", "link_challenge", "claims"])
    logger.info(
        "national sign-in %s: account with phone %s must prove control before linking",
        flow.pk,
        mask_phone(account.phone),
    )
    return Outcome(link_flow=flow, link_challenge=challenge, methods=methods)


def proof_methods(flow: NationalSignIn, account: User) -> tuple[str, ...]:
    """How `account` may prove control for this flow: its factors, less, for a link
    started by a signed-in session, those set up after that session signed in (its
    holder set them up; they prove nothing more than the session: `set_up_after`)."""
    methods = available_methods(account)
    if flow.signed_in_at is None:
        return methods
    signed_in_at = flow.signed_in_at
    return tuple(m for m in methods if not set_up_after(account, m, signed_in_at))


def verify_link(*, flow_id: uuid.UUID, method: str, code: str, ip: str) -> Outcome:
    """The existing account's proof (SMS code to its verified phone, TOTP or a recovery
    code): the identity is linked and the device signed in."""
    with transaction.atomic():
        flow = (
            NationalSignIn.objects.select_for_update()
            .select_related("link_user")
            .filter(pk=flow_id, consumed_at=None, link_user__isnull=False)
            .first()
        )
        if flow is None or flow.link_user is None:
            raise sms_codes.invalid_code()
        if flow.expires_at <= timezone.now():
            raise Unprocessable("code_expired", _("This code has expired. Start again."))
        account = flow.link_user
        if not account.is_active:  # disabled since the callback
            raise _account_disabled()
        if method == "sms_otp":
            if flow.link_challenge_id is None:
                raise sms_codes.invalid_code()
            verify_code(flow.link_challenge_id, OtpChallenge.Purpose.LINK_NATIONAL, code)
        else:
            if flow.signed_in_at is not None and method not in proof_methods(flow, account):
                raise sms_codes.invalid_code()  # set up by the session: not looked at
            verify_factor(account, method, code, code_key=f"national-link:{flow.pk}:{method}")
            if flow.link_challenge is not None:
                consume_challenge(flow.link_challenge)
        return _sign_in(flow, account, flow.claims, ip)


def _create_account(
    flow: NationalSignIn, phone: str | None, claims: dict[str, Any], ip: str, language: str | None
) -> Outcome:
    if phone is None:
        raise Unprocessable(
            "national_id_no_phone",
            _(
                "Your national identity has no mobile number we can use. Create an account "
                "with your phone number, then link your national identity to it."
            ),
        )
    # A sign-up that never verified this number does not own it.
    free_phone_number(phone)
    account = User.objects.create_user(
        phone,
        None,
        full_name=claims["name"] or phone,
        language=User.new_account_language(language),
        phone_verified_at=timezone.now(),
        verification_level=User.Level.PHONE,
    )
    outcome = _sign_in(flow, account, claims, ip)
    return Outcome(tokens=outcome.tokens, session=outcome.session, created_account=True)


def _sign_in(flow: NationalSignIn, account: User, claims: dict[str, Any], ip: str) -> Outcome:
    """Link (or refresh the link), apply what the identity asserts, sign the device in."""
    now = timezone.now()
    identity = (
        NationalIdentity.objects.select_for_update()
        .filter(issuer=claims["iss"], subject=claims["sub"])
        .first()
    )
    if identity is None:
        try:
            with transaction.atomic():
                identity = NationalIdentity.objects.create(
                    user=account,
                    issuer=claims["iss"],
                    subject=claims["sub"],
                    level=claims["level"],
                    full_name=claims["name"],
                    linked_at=now,
                    last_sign_in_at=now,
                )
        except IntegrityError as exc:  # linked meanwhile, or the account has another one
            raise Conflict(
                "national_id_account_has_other",
                _("This account is already linked to another national identity."),
            ) from exc
    elif identity.user_id != account.pk:
        raise _already_linked_elsewhere()
    else:
        identity.level = claims["level"]
        identity.full_name = claims["name"]
        identity.last_sign_in_at = now
        identity.save(update_fields=["level", "full_name", "last_sign_in_at"])
    _apply_identity(account, claims, now)
    spent = NationalSignIn.objects.filter(pk=flow.pk, consumed_at=None).update(consumed_at=now)
    if spent != 1:
        raise _state_mismatch()
    session, tokens = sign_device_in(
        account,
        DeviceInfo(**flow.device),
        ip,
        auth_method=NATIONAL_METHODS[claims["level"]],
        national_level=claims["level"],
    )
    logger.info("national sign-in %s: account %s at level %s", flow.pk, account.pk, claims["level"])
    return Outcome(tokens=tokens, session=session)


def _apply_identity(account: User, claims: dict[str, Any], now: dt.datetime) -> None:
    """The citizen ID the identity asserts replaces a self-declared one, marked verified;
    held by another account, it is flagged for support and left where it is."""
    fields = []
    if claims["level"] >= 2 and account.verification_level < User.Level.IDENTITY:
        account.verification_level = User.Level.IDENTITY
        fields.append("verification_level")
    citizen_id = claims["citizen_id"]
    if len(citizen_id) == 12 and citizen_id.isascii() and citizen_id.isdigit():
        holders = list(User.objects.filter(citizen_id=citizen_id).exclude(pk=account.pk))
        for holder in holders:
            citizen_id_conflicts.flag(
                citizen_id=citizen_id,
                verified_user=account,
                declared_by=holder,
                source=CitizenIdConflict.Source.NATIONAL,
            )
            logger.warning(
                "citizen ID asserted for account %s is held by account %s: flagged",
                account.pk,
                holder.pk,
            )
        # A number the account's citizen entered in the app, held aside, gives way to
        # the one its identity asserts (flagged above as the identity's if the same).
        citizen_id_conflicts.withdraw(account, now=now)
        if not holders and (
            account.citizen_id != citizen_id or account.citizen_id_verified_at is None
        ):
            account.citizen_id = citizen_id
            account.citizen_id_verified_at = now
            fields += ["citizen_id", "citizen_id_verified_at"]
            birth_date = _parse_date(claims["birthdate"])
            if birth_date is not None:
                account.birth_date = birth_date
                fields.append("birth_date")
    if fields:
        account.save(update_fields=fields)
    if "citizen_id" in fields:
        citizen_id_conflicts.settle(account, now=now)


def _parse_date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


# --- Unlinking ------------------------------------------------------------------------


def unlink(*, user: User) -> None:
    """Remove the link (after a recent sign-in); the account must keep a way in."""
    with transaction.atomic():
        identity = NationalIdentity.objects.select_for_update().filter(user=user).first()
        if identity is None:
            raise Conflict("national_id_not_linked", _("No national identity is linked."))
        if not user.has_usable_password():
            raise Conflict(
                "password_required",
                _(
                    "Set a password first (Forgot password): without the national identity "
                    "it is how you will sign in."
                ),
            )
        identity.delete()
        logger.info("account %s unlinked its national identity", user.pk)


def require_recent_national_sign_in(session: DeviceSession, *, level: int = 1) -> None:
    """Step-up: the session signed in with the national identity, at `level` or
    above, within NATIONAL_ID_STEP_UP_MINUTES."""
    window = dt.timedelta(minutes=settings.NATIONAL_ID_STEP_UP_MINUTES)
    signed = session.national_authenticated_at
    if signed is None or session.national_level < level or timezone.now() - signed > window:
        raise NotAuthenticated(
            "national_sign_in_required",
            _("Confirm it is you with your national identity (VNeID) to continue."),
            details={"required_level": level},
        )
