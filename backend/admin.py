from django.apps import apps

if apps.is_installed("procrastinate.contrib.django"):
    # The job queue's admin (not on the embedded default, whose queue is in memory).
    from backend import job_admin  # noqa: F401
