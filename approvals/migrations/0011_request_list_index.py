from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0010_dashboard_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="accessrequest",
            index=models.Index(fields=["created_at", "id"], name="accessrequest_created_id"),
        ),
    ]
