from django.apps import AppConfig


class AccountsConfig(AppConfig):
    # The folder is `auth/`; the label must not be `auth` (django.contrib.auth's).
    name = "auth"
    label = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"
