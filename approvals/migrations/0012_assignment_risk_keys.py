"""Copy the rank of each open assignment's risk tier and its integration's risk score onto the
assignment (the reviewer queue sorts and filters by them from its own partial indexes), and fill
them for the open assignments there are, in one set-based UPDATE."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import Case, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

# The portal's tier scale as it stands here (``governance.choices.LEVEL_ORDER``).
TIER_RANKS = {"low": 0, "medium": 1, "high": 2, "critical": 3}
NO_RANK = -1


def fill_open_assignments(apps, schema_editor):
    StepAssignment = apps.get_model("approvals", "StepAssignment")
    RequestStep = apps.get_model("approvals", "RequestStep")
    of_step = RequestStep.objects.filter(pk=OuterRef("step_id"))
    rank = Case(
        *(
            When(
                Q(request__integration__risk_tier=tier) | Q(request__integration__isnull=True, request__risk_tier=tier),
                then=Value(value),
            )
            for tier, value in TIER_RANKS.items()
        ),
        default=Value(NO_RANK),
        output_field=IntegerField(),
    )
    StepAssignment.objects.filter(is_open=True).update(
        risk_rank=Coalesce(Subquery(of_step.annotate(rank=rank).values("rank")[:1]), Value(NO_RANK)),
        risk_score=Coalesce(Subquery(of_step.values("request__integration__risk_score")[:1]), Value(0)),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0011_request_list_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="stepassignment",
            name="risk_rank",
            field=models.SmallIntegerField(default=-1),
        ),
        migrations.AddField(
            model_name="stepassignment",
            name="risk_score",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(fill_open_assignments, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="stepassignment",
            index=models.Index(
                condition=models.Q(("is_open", True)),
                fields=["user", "-risk_rank", "-risk_score", "due_at", "id"],
                name="assignment_open_by_risk",
            ),
        ),
        migrations.AddIndex(
            model_name="stepassignment",
            index=models.Index(
                condition=models.Q(("is_open", True)),
                fields=["user", "risk_rank", "due_at", "id"],
                name="assignment_open_by_tier",
            ),
        ),
    ]
