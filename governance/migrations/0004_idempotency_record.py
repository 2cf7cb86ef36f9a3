"""``IdempotencyRecord`` belongs to the API machinery of the kernel, no longer to the webhooks app.
The table stays where it is (``webhooks_idempotencyrecord``) with its rows: this migration only
tells Django's state that the model is now ``governance.IdempotencyRecord`` (the webhooks app's
``0003`` forgets it there), and moves its content type so its permissions follow it."""

import django.utils.timezone
from django.db import migrations, models


def _move_content_type(apps, source, target):
    """The model's content type (with its permissions) moves from app ``source`` to ``target``. A
    content type already under ``target`` is an empty one Django created after a partial migrate:
    it gives way."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    moving = ContentType.objects.filter(app_label=source, model="idempotencyrecord")
    if moving.exists():
        ContentType.objects.filter(app_label=target, model="idempotencyrecord").delete()
        moving.update(app_label=target)


def content_type_to_governance(apps, schema_editor):
    _move_content_type(apps, "webhooks", "governance")


def content_type_to_webhooks(apps, schema_editor):
    _move_content_type(apps, "governance", "webhooks")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("governance", "0003_audit_checkpoint"),
        # The table is created there.
        ("webhooks", "0002_secret_fingerprint"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="IdempotencyRecord",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("caller", models.CharField(max_length=80)),
                        ("key", models.CharField(max_length=200)),
                        ("method", models.CharField(max_length=8)),
                        ("path", models.CharField(max_length=500)),
                        ("body_hash", models.CharField(max_length=64)),
                        (
                            "status",
                            models.CharField(
                                choices=[("in_progress", "In progress"), ("done", "Done")],
                                default="in_progress",
                                max_length=12,
                            ),
                        ),
                        ("response_status", models.PositiveIntegerField(blank=True, null=True)),
                        ("response_body", models.TextField(blank=True)),
                        ("response_content_type", models.CharField(blank=True, max_length=100)),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                    ],
                    options={
                        "db_table": "webhooks_idempotencyrecord",
                        "constraints": [
                            models.UniqueConstraint(fields=("caller", "key"), name="idempotency_key_once_per_caller")
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_governance, content_type_to_webhooks),
    ]
