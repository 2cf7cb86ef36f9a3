"""``IdempotencyRecord`` now belongs to the ``governance`` app (its ``0004``), which keeps using
this app's table: the model leaves this app's state only, and the table and its rows stay."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0002_secret_fingerprint"),
        ("governance", "0004_idempotency_record"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="IdempotencyRecord")],
            database_operations=[],
        ),
    ]
