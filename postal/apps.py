from django.apps import AppConfig


class PostalConfig(AppConfig):
    name = "postal"
    label = "postal"
    default_auto_field = "django.db.models.BigAutoField"
