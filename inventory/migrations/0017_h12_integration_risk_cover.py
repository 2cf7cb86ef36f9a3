"""A narrow index of each integration's id with its risk tier and score: the reviewer queue joins
thousands of requests to their integrations to filter by tier or sort by risk, and reads these
two columns from the index alone instead of visiting the wide integration rows. Raw SQL without
a model state change: the index serves joins only, no model field or query names it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("inventory", "0015_h1_grant_scope_index")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS integration_id_risk_cover "
            "ON inventory_integration (id, risk_tier, risk_score)",
            "DROP INDEX IF EXISTS integration_id_risk_cover",
        )
    ]
