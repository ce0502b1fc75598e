from django.apps import AppConfig


class BackendConfig(AppConfig):
    name = "backend"
    label = "backend"
    verbose_name = "API conventions"

    def ready(self) -> None:
        from django.conf import settings

        if settings.JOBS_INLINE:
            # The embedded default's queue (backend.embedded_queue): the tasks move
            # onto it now, as procrastinate's Django app would take them.
            from backend import embedded_queue

            embedded_queue.install()
