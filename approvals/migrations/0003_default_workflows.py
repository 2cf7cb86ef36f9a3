"""Seed the default workflows and grant expiry policies (existing ones are kept), so requests
opened right after migrate — e.g. by the inventory's demo seeder — already run the defaults:
low = one IAM reviewer; medium = IAM reviewer then resource owner; high and critical = IAM
reviewer, resource owner, then security (security only for high and critical), every reviewer of
each step required for critical."""

from typing import Any

from django.db import migrations

TIERS = ["low", "medium", "high", "critical"]
TYPES = {"registration": "New registration", "expansion": "Scope expansion", "renewal": "Renewal",
         "re_review": "Re-review (risk raised)"}
SLA = {"low": 72, "medium": 48, "high": 24, "critical": 24}
EXPIRY = {"critical": 30, "high": 90, "medium": 180, "low": 365}


def seed(apps: Any, schema_editor: Any) -> None:
    Group = apps.get_model("auth", "Group")
    Workflow = apps.get_model("approvals", "Workflow")
    WorkflowStep = apps.get_model("approvals", "WorkflowStep")
    Policy = apps.get_model("approvals", "GrantExpiryPolicy")
    iam, _ = Group.objects.get_or_create(name="iam_reviewers")
    sec, _ = Group.objects.get_or_create(name="security_reviewers")
    admins, _ = Group.objects.get_or_create(name="iam_admin")
    for rtype, label in TYPES.items():
        for tier in TIERS:
            wf, made = Workflow.objects.get_or_create(
                request_type=rtype, risk_tier=tier, defaults={"name": f"{label} — {tier.capitalize()} risk"}
            )
            if not made:
                continue
            rule = "all" if tier == "critical" else "any"
            steps = [{"name": "IAM review", "pool_kind": "group", "pool_group": iam}]
            if tier != "low":
                steps.append({"name": "Resource owner", "pool_kind": "resource_owners", "pool_group": None})
            if tier in ("high", "critical"):
                steps.append({"name": "Security review", "pool_kind": "group", "pool_group": sec,
                              "only_for_tiers": ["high", "critical"]})
            for i, s in enumerate(steps, start=1):
                WorkflowStep.objects.create(workflow=wf, order=i, rule=rule, sla_hours=SLA[tier], escalation_group=admins, **s)
    for tier, days in EXPIRY.items():
        Policy.objects.get_or_create(risk_tier=tier, defaults={"days": days})


class Migration(migrations.Migration):
    dependencies = [("approvals", "0002_queue_index"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
