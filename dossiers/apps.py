from django.apps import AppConfig


class DossiersConfig(AppConfig):
    name = "dossiers"
    label = "dossiers"
    default_auto_field = "django.db.models.BigAutoField"
