"""Seed the default workflow of just-in-time elevations for every risk tier (an existing one is
kept): one step decided by any one IAM reviewer within 30 minutes, escalating to the IAM admins.
An elevation is one scope for one task, granted for an hour: one fast decision is what an IAM
team can keep up with, and the escalation catches a reviewer who is away."""

from typing import Any

from django.db import migrations

TIERS = ["low", "medium", "high", "critical"]
LABELS = {"low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}
SLA_MINUTES = 30


def seed(apps: Any, schema_editor: Any) -> None:
    Group = apps.get_model("auth", "Group")
    Workflow = apps.get_model("approvals", "Workflow")
    WorkflowStep = apps.get_model("approvals", "WorkflowStep")
    iam, _ = Group.objects.get_or_create(name="iam_reviewers")
    admins, _ = Group.objects.get_or_create(name="iam_admin")
    for tier in TIERS:
        workflow, made = Workflow.objects.get_or_create(
            request_type="jit_elevation",
            risk_tier=tier,
            defaults={"name": f"Just-in-time elevation — {LABELS[tier]} risk"},
        )
        if not made:
            continue
        WorkflowStep.objects.create(
            workflow=workflow,
            order=1,
            name="IAM review",
            pool_kind="group",
            pool_group=iam,
            rule="any",
            quorum=1,
            sla_hours=1,
            sla_minutes=SLA_MINUTES,
            escalation_group=admins,
        )


class Migration(migrations.Migration):
    dependencies = [("approvals", "0005_jit_elevation_and_sla_minutes")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
