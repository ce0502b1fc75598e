from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from backend.text import fold


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, phone: str, password: str | None = None, **extra: Any) -> User:
        if not phone:
            raise ValueError("A phone number is required.")
        user = self.model(phone=phone, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, phone: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("phone_verified_at", timezone.now())
        extra.setdefault("verification_level", User.Level.PHONE)
        return self.create_user(phone, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A citizen or a staff member. Signs in with a Vietnamese mobile number."""

    class Level(models.IntegerChoices):
        UNVERIFIED = 0, _("Unverified")
        PHONE = 1, _("Phone verified")
        IDENTITY = 2, _("Identity verified")

    class Language(models.TextChoices):
        VI = "vi", "Tiếng Việt"
        EN = "en", "English"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phone = models.CharField(
        _("phone number"), max_length=16, unique=True, help_text=_("E.164, e.g. +84912345678")
    )
    full_name = models.CharField(_("full name"), max_length=150)
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.VI)
    phone_verified_at = models.DateTimeField(null=True, blank=True)
    verification_level = models.PositiveSmallIntegerField(
        choices=Level.choices, default=Level.UNVERIFIED
    )
    citizen_id = models.CharField(
        _("citizen ID (CCCD)"), max_length=12, unique=True, null=True, blank=True
    )
    birth_date = models.DateField(null=True, blank=True)
    # A number entered here that another account holds is a `CitizenIdConflict` (source
    # "declared"), the one record of every conflict. The column `citizen_id_conflict`
    # that held it before stays in the table, written and read by nothing, until the
    # next release drops it (migrations 0016, 0017; README "Deploying").
    citizen_id_verified_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Set when a national identity asserted the citizen ID.")
    )
    # TOTP (authenticator app). The secret is encrypted at rest (see auth/totp.py).
    totp_secret = models.TextField(blank=True, help_text="Encrypted TOTP secret.")
    totp_confirmed_at = models.DateTimeField(null=True, blank=True)
    totp_last_step = models.BigIntegerField(
        null=True, blank=True, help_text="Last accepted time step (replay protection)."
    )
    # Set by a support reset: the citizen must choose a new password through an OTP flow.
    must_reset_password = models.BooleanField(default=False)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "phone"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["full_name"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.full_name or str(self.id)

    @classmethod
    def new_account_language(cls, requested: str | None) -> str:
        """A new account's `language`: the one its sign-up asked in (the request's) when
        the app speaks it, else the default (vi)."""
        if requested is not None and requested in cls.Language.values:
            return requested
        return cls.Language.VI

    # Compared with a new password (AUTH_PASSWORD_VALIDATORS): the name as people type
    # it without tone marks, and the number as dialled at home, besides the fields.
    @property
    def full_name_unaccented(self) -> str:
        return fold(self.full_name)

    @property
    def phone_national(self) -> str:
        return "0" + self.phone[3:] if self.phone.startswith("+84") else self.phone

    @property
    def is_verified_account(self) -> bool:
        return self.verification_level >= self.Level.IDENTITY

    @property
    def has_totp(self) -> bool:
        return self.totp_confirmed_at is not None


class RecoveryCode(models.Model):
    """One single-use recovery code (shown once; only its hash is stored)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery code of {self.user_id}"


class Organisation(models.Model):
    """A business or other organisation, identified by its tax code (MST)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tax_code = models.CharField(_("tax code"), max_length=14, unique=True)
    name = models.CharField(max_length=255)
    address = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the business registry confirmed the tax code.")
    )
    registry_name = models.CharField(
        max_length=255,
        blank=True,
        help_text=_("Name of the organisation in the business registry."),
    )
    members: models.ManyToManyField[User, Membership] = models.ManyToManyField(
        User, through="Membership", related_name="organisations"
    )

    def __str__(self) -> str:
        return f"{self.name} ({self.tax_code})"


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Administrator")
        MEMBER = "member", _("Member")

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    watches = models.BooleanField(
        default=True, help_text=_("Receives updates of the organisation's dossiers.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.organisation_id} ({self.role})"


class AuthMethod(models.TextChoices):
    """How a session's user proved who they are."""

    PASSWORD = "password", _("Password on a known device")
    PHONE_OTP = "phone_otp", _("Password and SMS code")
    TOTP = "totp", _("Password and authenticator code")
    RECOVERY_CODE = "recovery_code", _("Password and recovery code")
    REGISTRATION = "registration", _("SMS code at sign-up")
    NATIONAL_1 = "national_1", _("National identity (VNeID) level 1")
    NATIONAL_2 = "national_2", _("National identity (VNeID) level 2")


class DeviceSession(models.Model):
    """One signed-in device. Its refresh tokens rotate; revoking it ends them all."""

    class Platform(models.TextChoices):
        ANDROID = "android", "Android"
        IOS = "ios", "iOS"
        WEB = "web", "Web"
        OTHER = "other", _("Other")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="device_sessions")
    device_id = models.CharField(
        max_length=128, help_text=_("Installation id chosen by the app; stable per install.")
    )
    name = models.CharField(max_length=100, blank=True)
    platform = models.CharField(max_length=8, choices=Platform.choices, default=Platform.OTHER)
    app_version = models.CharField(max_length=32, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    authenticated_at = models.DateTimeField(
        default=timezone.now, help_text=_("Last time the user proved who they are here.")
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True)
    second_factor = models.CharField(
        max_length=16,
        blank=True,
        help_text="The second factor this session was opened with (sms_otp, totp, "
        "recovery_code), empty when none was asked (a known device). Support functions "
        "need a strong one: auth.access.require_support_sign_in.",
    )
    second_factor_at = models.DateTimeField(null=True, blank=True)
    auth_method = models.CharField(
        max_length=16,
        choices=AuthMethod.choices,
        blank=True,
        help_text=_("How the user proved who they are when this session started (or since)."),
    )
    national_authenticated_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Last national sign-in (VNeID) on this session.")
    )
    national_level = models.PositiveSmallIntegerField(
        default=0, help_text=_("Identity level asserted by that national sign-in (0: none).")
    )
    device_key_hash = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the device key given to the app at sign-in: proof that a later "
        "sign-in comes from this same installation.",
    )

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.name or self.platform} ({self.user_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class RefreshToken(models.Model):
    """One refresh token of a session. Only its hash is stored; it is usable once."""

    session = models.ForeignKey(
        DeviceSession, on_delete=models.CASCADE, related_name="refresh_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # The pair this token was exchanged for, encrypted with a key only this token's
    # holder can derive (auth/actions/sessions.py `_seal`): a retry within
    # REFRESH_TOKEN_RETRY_SECONDS gets the same pair back instead of ending the session.
    successor_sealed = models.BinaryField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return f"refresh token of {self.session_id}"


class OtpChallenge(models.Model):
    """One pending proof of a phone number (or a second sign-in step).

    A code is bound to its purpose and phone: the verify route of one flow only
    looks up challenges of its own purpose, and the hash covers both. Only the
    HMAC of the code is stored, written by the job that makes and texts the code
    (auth/actions/challenges.py `deliver_code`), never by the request. A challenge
    without a code (`code_hash` empty) never verifies by SMS: login with TOTP, a
    code not made yet, or a decoy.
    """

    class Purpose(models.TextChoices):
        REGISTER = "register", _("Registration")
        LOGIN = "login", _("Sign-in")
        RESET_PASSWORD = "reset_password", _("Password reset")
        CHANGE_PHONE = "change_phone", _("Phone number change")
        LINK_NATIONAL = "link_national", _("National identity link")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    phone = models.CharField(max_length=16, help_text="E.164 number the code goes to.")
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="otp_challenges"
    )
    code_hash = models.CharField(max_length=64, blank=True)
    # When the current code was asked for: the job texting it acts only while this
    # is still the newest request (a resend makes the older job a no-op).
    code_sent_at = models.DateTimeField(null=True, blank=True)
    decoy = models.BooleanField(
        default=False,
        help_text=(
            "The neutral answer given for a number that must not be revealed: the same "
            "work as a real challenge, but no code is ever made or accepted."
        ),
    )
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    # Login: the device asking to sign in, started once the second step passes.
    device = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["phone", "purpose"])]

    def __str__(self) -> str:
        return f"{self.purpose} challenge {self.id}"


class Invitation(models.Model):
    """An invitation to join an organisation, addressed to a phone number.

    Whoever holds the verified account of that number sees it in the app and
    accepts or declines it. Inviting never reveals whether the number is registered.
    """

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("invitation status", "Pending")
        ACCEPTED = "accepted", pgettext_lazy("invitation status", "Accepted")
        DECLINED = "declined", pgettext_lazy("invitation status", "Declined")
        REVOKED = "revoked", pgettext_lazy("invitation status", "Revoked")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="invitations"
    )
    phone = models.CharField(_("phone number"), max_length=16, help_text=_("E.164"))
    role = models.CharField(
        max_length=8, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    invited_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    responded_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "phone"],
                condition=models.Q(status="pending"),
                name="invitation_one_pending_per_phone",
            ),
        ]
        indexes = [models.Index(fields=["phone", "status"])]

    def __str__(self) -> str:
        return f"invitation to {self.organisation_id} ({self.status})"

    def is_expired(self, now: Any = None) -> bool:
        return self.expires_at <= (now or timezone.now())


class SupportReset(models.Model):
    """A support staff member's reset of a citizen's sign-in factors.

    Level-2 (identity verified) accounts need a second staff member's approval
    before anything changes; other accounts are reset when the reset is opened.
    """

    class Kind(models.TextChoices):
        LOST_PHONE = "lost_phone", _("Lost phone")
        LOST_AUTHENTICATOR = "lost_authenticator", _("Lost authenticator")
        LOCKED_OUT = "locked_out", _("Locked out")
        NEW_PHONE_NUMBER = "new_phone_number", _("New phone number")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a second approval")
        APPLIED = "applied", _("Applied")
        REJECTED = "rejected", _("Rejected")
        EXPIRED = "expired", _("Expired without approval")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="support_resets")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    reason = models.TextField()
    evidence = models.TextField(help_text=_("How the citizen's identity was proven."))
    ticket_number = models.CharField(max_length=64, blank=True)
    new_phone = models.CharField(max_length=16, blank=True, help_text=_("E.164"))
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    requires_approval = models.BooleanField(default=False)
    opened_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(default=timezone.now)
    approved_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [
            ("support_reset", "Can look up accounts and reset them (support staff)"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status="pending"),
                name="support_reset_one_pending_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.user_id} ({self.status})"


class SupportAuditRecord(models.Model):
    """One support action. Append-only: a database trigger refuses UPDATE and DELETE."""

    class Action(models.TextChoices):
        LOOKUP = "lookup", _("Account looked up")
        RESET_OPENED = "reset_opened", _("Reset opened")
        RESET_APPROVED = "reset_approved", _("Reset approved")
        RESET_REJECTED = "reset_rejected", _("Reset rejected")
        RESET_APPLIED = "reset_applied", _("Reset applied")
        # A citizen's row changed by staff in the admin (a refund, a test push, ...).
        STAFF_CHANGE = "staff_change", _("Changed by staff")

    actor = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    subject = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="support_audit"
    )
    reset = models.ForeignKey(
        SupportReset, on_delete=models.PROTECT, null=True, blank=True, related_name="audit"
    )
    evidence = models.TextField(blank=True)
    approver = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(max_length=8, default="api", help_text=_("api or admin"))
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["subject", "created_at"])]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id} at {self.created_at:%Y-%m-%d %H:%M}"


class NationalIdentity(models.Model):
    """A national electronic identity (VNeID, through the portal's SSO) linked to an account.

    One identity (issuer + subject) belongs to at most one account, and an account
    has at most one. `level` is the level of assurance of its latest sign-in.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="national_identity")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    level = models.PositiveSmallIntegerField(
        choices=[(1, _("Level 1")), (2, _("Level 2"))], help_text=_("VNeID identity level")
    )
    full_name = models.CharField(max_length=150, blank=True)
    linked_at = models.DateTimeField(default=timezone.now)
    last_sign_in_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="national_identity_unique"),
        ]

    def __str__(self) -> str:
        return f"national identity level {self.level} of {self.user_id}"


class NationalSignIn(models.Model):
    """One national sign-in in progress: from the authorization URL to its callback.

    `state` (stored hashed) binds the callback to this row; the PKCE verifier and
    the nonce never leave the server. A row is spent once (`consumed_at`). When
    the identity must first be linked to an existing account, the row waits for
    that account's proof (`link_user`, `claims`).
    """

    class Purpose(models.TextChoices):
        SIGN_IN = "sign_in", _("Sign in")
        LINK = "link", _("Link to the signed-in account")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    state_hash = models.CharField(max_length=64, unique=True)
    nonce = models.CharField(max_length=64, unique=True)
    code_verifier = models.CharField(max_length=128)
    min_level = models.PositiveSmallIntegerField(default=1)
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    device = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    # A link flow: when the session that started it signed in. An authenticator or
    # recovery codes set up after that were set up by whoever holds the session, so
    # they do not prove control of the account for this link (`verify_link`).
    signed_in_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    callback_at = models.DateTimeField(null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)
    # After a callback that needs the existing account's proof first.
    link_user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    link_challenge = models.ForeignKey(
        OtpChallenge, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    claims = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"national {self.purpose} {self.id}"


class CitizenIdConflict(models.Model):
    """A citizen ID claimed by one account while another holds it: support settle it in
    person; nothing is overwritten. The one record of such conflicts: support's look-up,
    the user pages and the app's "as entered" number all read it.

    Two ways to claim a number (`source`): the account's national identity asserted it
    (`national_sign_in`), or its citizen entered it in the app (`accounts.set_identity`).
    `verified_user` is the claiming account (named for the first way; a citizen who
    entered the number is not verified), `declared_by` the account that held the number
    when it was claimed (it declared it, or its own national identity asserted it).
    When each is settled: `auth.actions.citizen_id_conflicts`.
    """

    class Source(models.TextChoices):
        NATIONAL = "national", _("asserted by the national identity (VNeID)")
        DECLARED = "declared", _("entered in the app")

    citizen_id = models.CharField(_("citizen ID (CCCD)"), max_length=12)
    verified_user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="+", verbose_name=_("claimed by")
    )
    declared_by = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="+", verbose_name=_("held by")
    )
    # A default in the database too: the previous release, still serving while this
    # one rolls out, flags national conflicts without naming the column.
    source = models.CharField(
        _("claimed how"),
        max_length=8,
        choices=Source.choices,
        default=Source.NATIONAL,
        db_default=Source.NATIONAL,
    )
    created_at = models.DateTimeField(_("flagged at"), default=timezone.now)
    resolved_at = models.DateTimeField(
        _("settled at"),
        null=True,
        blank=True,
        help_text=_(
            "Asserted by a national identity: set when the account that held the number "
            "no longer holds it (the claiming account takes it at its next national "
            "sign-in). Entered in the app: set when the claiming account holds the number "
            "or entered another."
        ),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["citizen_id", "verified_user", "declared_by"],
                name="citizen_id_conflict_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"citizen ID conflict {self.verified_user_id} / {self.declared_by_id}"
