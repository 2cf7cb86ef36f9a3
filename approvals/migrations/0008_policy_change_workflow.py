"""Seed the default workflow of policy changes (an existing one is kept): one step decided by any
one IAM admin within 24 hours, escalating to the IAM admins. A policy change is requested at the
high tier, so that is the one workflow it runs; it never borrows the registration's, whose IAM
reviewers are not the people who may enforce a policy."""

from typing import Any

from django.db import migrations

SLA_HOURS = 24


def seed(apps: Any, schema_editor: Any) -> None:
    Group = apps.get_model("auth", "Group")
    Workflow = apps.get_model("approvals", "Workflow")
    WorkflowStep = apps.get_model("approvals", "WorkflowStep")
    admins, _ = Group.objects.get_or_create(name="iam_admin")
    workflow, made = Workflow.objects.get_or_create(
        request_type="policy_change", risk_tier="high", defaults={"name": "Policy change — High risk"}
    )
    if not made:
        return
    WorkflowStep.objects.create(
        workflow=workflow,
        order=1,
        name="IAM admin approval",
        pool_kind="group",
        pool_group=admins,
        rule="any",
        quorum=1,
        sla_hours=SLA_HOURS,
        escalation_group=admins,
    )


class Migration(migrations.Migration):
    dependencies = [("approvals", "0007_policy_change_requests")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
