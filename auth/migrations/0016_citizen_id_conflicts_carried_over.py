"""The citizen IDs kept on `User.citizen_id_conflict` become conflicts entered in the
app (`CitizenIdConflict`, source "declared"), the one record of conflicts since.

Until now a number a citizen entered that another account held was kept on the
entering account's column; the conflicts asserted by a national identity were rows.
Support saw the first kind on the user pages and in the support look-up only, the
second in the conflicts' pages only, and the column stayed set after the number
became the account's. From this release the rows are read, the column by nothing.

For each account whose column is set, holding no citizen ID (an account that holds
one had its entry overtaken: its national identity or a superuser gave it a number
since) and with no conflict entered in the app yet (one carried over before, or
entered since this release: the column is not cleared any more):

- another account holds the number: an open conflict of the two, entered in the app;
- nobody holds it now and no national identity claimed it: the account takes it, as
  it would entering it today (`accounts.set_identity`); the first account in key
  order does, the others then conflict with it;
- nobody holds it and a national identity claimed it (that account takes it at its
  next national sign-in): nothing is carried; the citizen enters it again.

Safe on a big users table: not atomic; the accounts with the column set are read in
key order, a batch at a time, each batch in a short transaction of its own that only
locks the rows it changes (every statement under `manage.py migrate`'s lock_timeout).
Idempotent: run again, it finds nothing left to carry. Release 2 runs it again before
dropping the column, for entries the previous release wrote while this one rolled out
(README "Deploying").
"""

from typing import Any

from django.db import IntegrityError, migrations, transaction
from django.utils import timezone

BATCH = 500


def carry_over(apps: Any, schema_editor: Any) -> None:
    User = apps.get_model("accounts", "User")
    CitizenIdConflict = apps.get_model("accounts", "CitizenIdConflict")
    alias = schema_editor.connection.alias
    users = User.objects.using(alias)
    conflicts = CitizenIdConflict.objects.using(alias)
    after = None
    while True:
        pending = users.filter(citizen_id=None).exclude(citizen_id_conflict="").order_by("pk")
        if after is not None:
            pending = pending.filter(pk__gt=after)
        batch = list(pending.values_list("pk", "citizen_id_conflict")[:BATCH])
        if not batch:
            return
        after = batch[-1][0]
        with transaction.atomic(using=alias):
            for user_id, number in batch:
                if conflicts.filter(verified_user_id=user_id, source="declared").exists():
                    continue
                holder = users.filter(citizen_id=number).exclude(pk=user_id).first()
                claimed = conflicts.filter(citizen_id=number, source="national").exists()
                if holder is None and not claimed:
                    try:
                        with transaction.atomic(using=alias):
                            users.filter(pk=user_id, citizen_id=None).update(citizen_id=number)
                        continue
                    except IntegrityError:  # taken meanwhile
                        holder = users.filter(citizen_id=number).exclude(pk=user_id).first()
                if holder is not None:
                    conflicts.get_or_create(
                        citizen_id=number,
                        verified_user_id=user_id,
                        declared_by_id=holder.pk,
                        defaults={"source": "declared", "created_at": timezone.now()},
                    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0015_citizen_id_conflict_source"),
    ]

    operations = [migrations.RunPython(carry_over, migrations.RunPython.noop)]
