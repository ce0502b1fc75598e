"""The account itself: profile, phone number, citizen ID."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth import otp
from auth.actions import check_password_with_limits, new_challenge
from auth.identity import validate_citizen_id
from auth.models import OtpChallenge, User
from auth.phone import mask_phone, normalise_phone
from auth.second_factor import verify_factor
from auth.sms import SmsError, send_sms
from backend.errors import Conflict, field_error

logger = logging.getLogger(__name__)

NOTICE_PHONE_CHANGED = (
    "Số điện thoại của tài khoản Dịch vụ công vừa được đổi sang {new}. Nếu không phải "
    "bạn thực hiện, hãy liên hệ bộ phận hỗ trợ ngay."
)


def update_profile(*, user: User, full_name: str | None, language: str | None) -> User:
    fields = []
    if full_name is not None:
        if not full_name.strip():
            raise field_error("full_name", "required", _("This field is required."))
        user.full_name = full_name.strip()
        fields.append("full_name")
    if language is not None:
        user.language = language
        fields.append("language")
    if fields:
        user.save(update_fields=fields)
    return user


def _prove_possession(user: User, password: str | None, totp_code: str | None, ip: str) -> None:
    if totp_code:
        verify_factor(user, "totp", totp_code, code_key=f"proof:{user.pk}")
        return
    if not password:
        raise field_error(
            "password", "required", _("Enter your password or an authenticator code.")
        )
    if check_password_with_limits(user.phone, password, ip) is None:
        raise field_error("password", "invalid_password", _("The password is not correct."))


def request_phone_change(
    *, user: User, new_phone: str, password: str | None, totp_code: str | None, ip: str
) -> OtpChallenge:
    """A code to the new number. A number that belongs to another verified account
    gets nothing, with the same answer (the change then cannot be confirmed)."""
    e164 = normalise_phone(new_phone, field="new_phone")
    if e164 == user.phone:
        raise field_error(
            "new_phone", "same_phone", _("This is already the number of your account.")
        )
    _prove_possession(user, password, totp_code, ip)
    with transaction.atomic():
        taken = (
            User.objects.filter(phone=e164, phone_verified_at__isnull=False)
            .exclude(pk=user.pk)
            .exists()
        )
        challenge = new_challenge(OtpChallenge.Purpose.CHANGE_PHONE, e164, user, ip)
        otp.issue_code(challenge, ip=ip, send=not taken)
        return challenge


def confirm_phone_change(*, user: User, challenge_id: uuid.UUID, code: str) -> User:
    """The code from the new number moves the account there; the old number is told."""
    with transaction.atomic():
        challenge = otp.verify_code(
            challenge_id, OtpChallenge.Purpose.CHANGE_PHONE, code, user=user
        )
        old_phone = user.phone
        # A sign-up that never verified this number does not own it.
        User.objects.filter(phone=challenge.phone, phone_verified_at__isnull=True).exclude(
            pk=user.pk
        ).delete()
        user.phone = challenge.phone
        user.phone_verified_at = timezone.now()
        try:
            with transaction.atomic():
                user.save(update_fields=["phone", "phone_verified_at"])
        except IntegrityError as exc:
            raise Conflict("phone_taken", _("This number belongs to another account.")) from exc
    try:
        send_sms(
            old_phone,
            NOTICE_PHONE_CHANGED.format(new=mask_phone(user.phone)),
            purpose="notice.phone_changed",
        )
    except SmsError:
        logger.warning("phone-change notice to %s not sent", mask_phone(old_phone))
    return user


def set_identity(*, user: User, citizen_id: str, birth_date: dt.date) -> User:
    """Record the citizen ID (checked structurally); staff verify it for level 2."""
    if user.verification_level >= User.Level.IDENTITY:
        raise Conflict("identity_locked", _("Your identity is verified; ask support to change it."))
    value = validate_citizen_id(citizen_id, birth_date)
    with transaction.atomic():
        if User.objects.filter(citizen_id=value).exclude(pk=user.pk).exists():
            raise Conflict(
                "citizen_id_taken", _("This citizen ID is already used by another account.")
            )
        user.citizen_id = value
        user.birth_date = birth_date
        try:
            with transaction.atomic():
                user.save(update_fields=["citizen_id", "birth_date"])
        except IntegrityError as exc:
            raise Conflict(
                "citizen_id_taken", _("This citizen ID is already used by another account.")
            ) from exc
    return user
