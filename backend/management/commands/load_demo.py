"""Load the demo data every app offers (idempotent: safe to run on every start)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string


class Command(BaseCommand):
    help = "Load demo catalogue and accounts (DEMO_LOADERS), or print the demo logins."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--print-logins", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["print_logins"]:
            lines = list(settings.DEMO_LOGINS)
            for source in settings.DEMO_LOGIN_SOURCES:
                lines.extend(import_string(source)())
            for line in lines:
                self.stdout.write(f"  {line}")
            return
        for path in settings.DEMO_LOADERS:
            summary = import_string(path)()
            self.stdout.write(f"{path}: {summary}")
