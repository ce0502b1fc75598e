from django.apps import AppConfig


class BackendConfig(AppConfig):
    name = "backend"
    label = "backend"
    verbose_name = "API conventions"
