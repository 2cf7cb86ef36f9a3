"""A delivery's ``fallback`` is called ``details``, the name its receivers see in the payload."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0003_idempotency_record_to_governance"),
    ]

    operations = [
        migrations.RenameField(model_name="webhookdelivery", old_name="fallback", new_name="details"),
    ]
