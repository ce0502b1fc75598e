"""Numbers that a support reset moved an account to count as verified (issue 13).

Before, such a number was left unverified, and password reset serves only
verified numbers: the citizen could not get back in. The reset's proofing
verified it; the password reset's OTP to it still follows at the first sign-in.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.models import Exists, OuterRef, Subquery


def verify_moved_numbers(apps: Any, schema_editor: Any) -> None:
    User = apps.get_model("accounts", "User")
    SupportReset = apps.get_model("accounts", "SupportReset")
    applied = SupportReset.objects.filter(
        user=OuterRef("pk"), status="applied", new_phone=OuterRef("phone")
    ).order_by("-applied_at")
    User.objects.filter(Exists(applied), phone_verified_at__isnull=True).update(
        phone_verified_at=Subquery(applied.values("applied_at")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0008_citizen_id_conflict")]

    operations = [migrations.RunPython(verify_moved_numbers, migrations.RunPython.noop)]
