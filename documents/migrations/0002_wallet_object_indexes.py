"""The wallet's papers by their thumbnail (their file has its index since 0001):
whether a paper still points at an object is a probe (documents/wallet.py
`_referenced`). Built CONCURRENTLY on PostgreSQL, a plain CREATE INDEX on SQLite."""

from django.db import migrations, models

from backend.online_migrations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("documents", "0001_wallet"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="walletitem",
            index=models.Index(fields=["thumbnail"], name="wallet_item_thumbnail"),
        ),
    ]
