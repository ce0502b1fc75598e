"""A citizen ID conflict says how its number was claimed: asserted by the national
identity (every row so far) or entered in the app (the conflicts kept on the user's
`citizen_id_conflict` until now, carried over by 0016).

The column has a default in the database too: the previous release, still serving
while this one rolls out, flags conflicts of the national sign-in without naming it.
Adding a column with a constant default is a catalogue change (no rewrite).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0014_support_audit_staff_change"),
    ]

    operations = [
        migrations.AddField(
            model_name="citizenidconflict",
            name="source",
            field=models.CharField(
                choices=[
                    ("national", "asserted by the national identity (VNeID)"),
                    ("declared", "entered in the app"),
                ],
                db_default="national",
                default="national",
                max_length=8,
                verbose_name="claimed how",
            ),
        ),
        migrations.AlterField(
            model_name="citizenidconflict",
            name="declared_by",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="held by",
            ),
        ),
        migrations.AlterField(
            model_name="citizenidconflict",
            name="resolved_at",
            field=models.DateTimeField(
                blank=True,
                help_text=(
                    "Asserted by a national identity: set when the account that held the "
                    "number no longer holds it (the claiming account takes it at its next "
                    "national sign-in). Entered in the app: set when the claiming account "
                    "holds the number or entered another."
                ),
                null=True,
                verbose_name="settled at",
            ),
        ),
        migrations.AlterField(
            model_name="citizenidconflict",
            name="verified_user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="claimed by",
            ),
        ),
    ]
