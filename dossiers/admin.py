"""Admin registrations of the dossiers app."""

from dossiers import admin_lifecycle  # noqa: F401
