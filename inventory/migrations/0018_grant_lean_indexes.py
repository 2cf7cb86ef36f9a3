"""Grants lose the indexes an ended grant would write for nothing: the single-column indexes of
integration and scope (the composite indexes leading with them serve the same lookups), and
their history the indexes of integration, scope and who ended a grant (it is read by grant and
time only) and the database constraint on its author (checked per row at each commit; the
history's other references have none)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0017_h12_integration_risk_cover"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="grant",
            name="integration",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="grants",
                to="inventory.integration",
            ),
        ),
        migrations.AlterField(
            model_name="grant",
            name="scope",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="grants", to="inventory.scope"
            ),
        ),
        migrations.AlterField(
            model_name="historicalgrant",
            name="ended_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="historicalgrant",
            name="history_user",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="historicalgrant",
            name="integration",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="inventory.integration",
            ),
        ),
        migrations.AlterField(
            model_name="historicalgrant",
            name="scope",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="inventory.scope",
            ),
        ),
    ]
