"""A link flow keeps when the session that started it signed in: an authenticator or
recovery codes set up after that do not prove control of the account for the link.

A nullable column with no default: a catalogue change (no rewrite). The previous
release, still serving while this one rolls out, leaves it empty: its link flows
(ten minutes at most) keep offering every factor, as they did.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0017_user_citizen_id_conflict_no_longer_written"),
    ]

    operations = [
        migrations.AddField(
            model_name="nationalsignin",
            name="signed_in_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
