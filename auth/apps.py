from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class AccountsConfig(AppConfig):
    # The folder is `auth/`; the label must not be `auth` (django.contrib.auth's).
    name = "auth"
    label = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from auth.sms import check_autofill_settings

        checks.register(check_autofill_settings)


class StaffAdminConfig(AdminConfig):
    """The Django admin with the staff sign-in of auth.admin_login (password + TOTP)."""

    default_site = "auth.admin_login.StaffAdminSite"
