"""Demo data of the inventory (order 10): a realistic scope catalog and a dozen AI integrations
of every kind and risk tier, owned by alice and bob, registered and submitted through the
services (so approvals opens their requests). Idempotent: matched by code and name."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from governance.actors import Actor
from governance.models import User
from inventory import services
from inventory.models import Integration, ResourceSystem, Scope

# system code, name, description, owners, [(scope name, sensitivity, access, description)]
CATALOG: list[tuple[str, str, str, list[str], list[tuple[str, str, str, str]]]] = [
    (
        "msgraph",
        "Microsoft Graph",
        "Microsoft 365 mail, calendars, files and directory.",
        [],
        [
            ("User.Read", "low", "read", "Sign in and read the signed-in user's profile."),
            ("Mail.Read", "high", "read", "Read the user's mailbox."),
            ("Mail.Send", "high", "write", "Send mail as the user."),
            ("Calendars.ReadWrite", "medium", "write", "Read and change the user's calendars."),
            ("Files.Read.All", "high", "read", "Read every file the user can reach in OneDrive and SharePoint."),
            ("Directory.ReadWrite.All", "critical", "admin", "Change users, groups and apps in the directory."),
        ],
    ),
    (
        "gworkspace",
        "Google Workspace",
        "Gmail, Drive and Calendar.",
        [],
        [
            ("gmail.readonly", "high", "read", "Read Gmail messages."),
            ("drive.file", "medium", "write", "Files the app created or was given."),
            ("drive.readonly", "high", "read", "Read all Drive files."),
            ("calendar.events", "medium", "write", "Create and change calendar events."),
        ],
    ),
    (
        "slack",
        "Slack",
        "Company chat.",
        [],
        [
            ("channels:history", "medium", "read", "Read messages in public channels."),
            ("chat:write", "medium", "write", "Post messages."),
            ("users:read", "low", "read", "List workspace members."),
            ("admin", "critical", "admin", "Administer the workspace."),
        ],
    ),
    (
        "github",
        "GitHub",
        "Source code and CI.",
        [],
        [
            ("repo:read", "medium", "read", "Read private repositories."),
            ("repo:write", "high", "write", "Push to repositories and open pull requests."),
            ("admin:org", "critical", "admin", "Manage the organisation, its members and settings."),
        ],
    ),
    (
        "salesforce",
        "Salesforce",
        "CRM: accounts, contacts, opportunities.",
        [],
        [
            ("api", "high", "read", "Read CRM records through the API."),
            ("refresh_token", "medium", "read", "Keep access while the user is away."),
            ("full", "critical", "admin", "Full access to all data the user can reach."),
        ],
    ),
    (
        "hrdb",
        "HR database",
        "Internal HR system of record: employees, salaries, reviews.",
        ["omar"],
        [
            ("employees.read", "high", "read", "Names, roles, managers and contact details."),
            ("compensation.read", "critical", "read", "Salaries and bonuses."),
            ("employees.write", "critical", "write", "Change employee records."),
        ],
    ),
    (
        "dwh",
        "Data warehouse",
        "Analytics warehouse with sales and support history.",
        ["omar"],
        [
            ("sales_mart.read", "medium", "read", "Aggregated sales figures."),
            ("customer_pii.read", "critical", "read", "Customer names, emails and phone numbers."),
            ("support_tickets.read", "high", "read", "Support ticket texts."),
            ("sandbox.write", "low", "write", "Write to the analysts' sandbox schema."),
        ],
    ),
]


def _seed_catalog(actor: Actor) -> None:
    for code, name, desc, owners, scopes in CATALOG:
        system = ResourceSystem.objects.filter(code=code).first()
        if system is None:
            system = services.resource_system_save(
                actor=actor,
                values={"code": code, "name": name, "description": desc},
                owners=list(User.objects.filter(username__in=owners)),
            )
        for sname, sens, access, sdesc in scopes:
            if not Scope.objects.filter(system=system, name=sname).exists():
                services.scope_save(
                    actor=actor,
                    system=system,
                    values={"name": sname, "sensitivity": sens, "access": access, "description": sdesc},
                )


def _creds(
    kind: str, ident: str, *, age_days: int, expires_days: int | None, rotated_days: int | None = None
) -> dict[str, Any]:
    now = timezone.now()
    return {
        "type": kind,
        "identifier": ident,
        "created_at": now - timedelta(days=age_days),
        "expires_at": now + timedelta(days=expires_days) if expires_days is not None else None,
        "last_rotated_at": now - timedelta(days=rotated_days) if rotated_days is not None else None,
    }


# name, owner, tech owner, kind, vendor, classifications, acts_for_users, autonomy, scopes,
# workload identity, credentials, invokes (names), action (draft/submit)
INTEGRATIONS: list[dict[str, Any]] = [
    dict(
        name="Meeting notes summariser",
        owner="alice",
        kind="plugin",
        vendor="",
        data=["internal"],
        acts=False,
        autonomy="suggest_only",
        scopes=["msgraph:User.Read", "slack:users:read"],
        wid="spiffe://example.org/ns/ai/sa/notes",
        creds=[("workload_identity_token", "notes-svid", 10, 1, None)],
        purpose="Summarises meeting transcripts into short notes for the attendees.",
        action="submit",
    ),
    dict(
        name="Sales email assistant",
        owner="alice",
        kind="chatbot",
        vendor="OpenAI",
        data=["confidential"],
        acts=True,
        autonomy="human_in_loop",
        scopes=["msgraph:Mail.Read", "msgraph:Mail.Send", "salesforce:api"],
        wid="",
        creds=[("oauth_client", "app-6f1c2a9e-sales-assist", 200, None, None)],
        purpose="Drafts replies to customer emails using CRM context; a salesperson sends them.",
        action="submit",
    ),
    dict(
        name="Pipeline forecaster",
        owner="alice",
        kind="embedded_model",
        vendor="",
        data=["internal", "confidential"],
        acts=False,
        autonomy="suggest_only",
        scopes=["dwh:sales_mart.read", "salesforce:api"],
        wid="https://token.actions.githubusercontent.com repo:example/forecaster",
        creds=[("certificate", "SHA256:forecaster-2025", 30, 335, None)],
        purpose="Forecasts the quarter's pipeline from CRM and warehouse data.",
        action="submit",
    ),
    dict(
        name="Calendar scheduling agent",
        owner="alice",
        kind="agent",
        vendor="Reclaim",
        data=["internal"],
        acts=True,
        autonomy="autonomous",
        scopes=["msgraph:Calendars.ReadWrite", "gworkspace:calendar.events"],
        wid="",
        creds=[("oauth_grant", "reclaim-grant-alice", 120, None, None)],
        purpose="Moves meetings to protect focus time, without asking.",
        action="submit",
    ),
    dict(
        name="Lead enrichment automation",
        owner="alice",
        kind="automation",
        vendor="Zapier",
        data=["confidential"],
        acts=False,
        autonomy="autonomous",
        scopes=["salesforce:full", "dwh:customer_pii.read"],
        wid="",
        creds=[("api_key", "zap-key-id-4411", 400, None, None)],
        purpose="Enriches new leads with firmographic data and writes them back to the CRM.",
        action="draft",
    ),
    dict(
        name="Contract clause checker",
        owner="alice",
        kind="plugin",
        vendor="",
        data=["confidential"],
        acts=False,
        autonomy="suggest_only",
        scopes=["gworkspace:drive.file"],
        wid="spiffe://example.org/ns/legal/sa/clauses",
        creds=[],
        purpose="Flags risky clauses in draft contracts.",
        action="draft",
    ),
    dict(
        name="Support triage bot",
        owner="bob",
        kind="chatbot",
        vendor="",
        data=["internal", "confidential"],
        acts=False,
        autonomy="human_in_loop",
        scopes=["dwh:support_tickets.read", "slack:chat:write"],
        wid="spiffe://example.org/ns/support/sa/triage",
        creds=[("workload_identity_token", "triage-svid", 5, 1, None)],
        purpose="Sorts incoming support tickets and suggests a queue and a first answer.",
        action="submit",
    ),
    dict(
        name="Knowledge base answerer",
        owner="bob",
        kind="chatbot",
        vendor="Anthropic",
        data=["internal"],
        acts=False,
        autonomy="suggest_only",
        scopes=["slack:channels:history", "slack:chat:write"],
        wid="",
        creds=[("api_key", "kb-answerer-key-01", 60, 300, 20)],
        purpose="Answers employees' questions in Slack from the public channels' history.",
        action="submit",
        invokes=["Support triage bot"],
    ),
    dict(
        name="Refund approval agent",
        owner="bob",
        kind="agent",
        vendor="",
        data=["restricted"],
        acts=False,
        autonomy="autonomous",
        scopes=["dwh:customer_pii.read", "salesforce:full"],
        wid="",
        creds=[("service_account", "svc-refund-agent", 500, None, None)],
        purpose="Approves small refunds on its own and records them in the CRM.",
        action="submit",
    ),
    dict(
        name="HR onboarding helper",
        owner="bob",
        kind="automation",
        vendor="",
        data=["restricted"],
        acts=False,
        autonomy="human_in_loop",
        scopes=["hrdb:employees.read"],
        wid="spiffe://example.org/ns/hr/sa/onboarding",
        creds=[("certificate", "SHA256:onboard-cert", 20, 345, None)],
        purpose="Prepares accounts and checklists for new joiners.",
        action="submit",
    ),
    dict(
        name="Code review assistant",
        owner="bob",
        kind="plugin",
        vendor="GitHub",
        data=["internal"],
        acts=True,
        autonomy="human_in_loop",
        scopes=["github:repo:read"],
        wid="",
        creds=[("oauth_client", "Iv1.8a61f9b3a7aba766", 45, None, 45)],
        purpose="Comments on pull requests with suggested changes.",
        action="draft",
    ),
    dict(
        name="Support macro writer",
        owner="bob",
        kind="other",
        vendor="",
        data=["internal"],
        acts=False,
        autonomy="suggest_only",
        scopes=["slack:users:read"],
        wid="spiffe://example.org/ns/support/sa/macros",
        creds=[],
        purpose="Drafts canned replies for the support team.",
        action="draft",
        invokes=["Knowledge base answerer"],
    ),
]


def seed() -> None:
    admin = User.objects.filter(username="ivan").first()
    if admin is None:
        # The demo catalog is kept by the demo IAM admin; without the demo people nobody would
        # answer for it (every audit event names an accountable person).
        return
    actor = Actor.coerce(admin)
    _seed_catalog(actor)
    people = {u.username: u for u in User.objects.filter(username__in=["alice", "bob", "mark"])}
    if "alice" not in people or "bob" not in people:
        return
    for spec in INTEGRATIONS:
        if Integration.objects.filter(name=spec["name"]).exists():
            continue
        owner = people[spec["owner"]]
        values = {
            "name": spec["name"],
            "kind": spec["kind"],
            "purpose": spec["purpose"],
            "vendor": spec["vendor"],
            "business_owner": owner,
            "technical_owner": owner,
            "backup_owner": people.get("mark"),
            "data_classifications": spec["data"],
            "acts_for_users": spec["acts"],
            "autonomy": spec["autonomy"],
            "requested_scopes": list(Scope.objects.filter(code__in=spec["scopes"])),
            "workload_identity": spec["wid"],
            "credentials": [
                _creds(t, i, age_days=a, expires_days=e, rotated_days=r) for t, i, a, e, r in spec["creds"]
            ],
            "invokes": list(Integration.objects.filter(name__in=spec.get("invokes", []))),
            "tags": ["demo"],
        }
        integration = services.integration_register(actor=owner, values=values, submit=spec["action"] == "submit")
        # Naming mark as backup owner asked for his consent; in the demo he has said yes.
        for transfer in integration.transfers.filter(status="proposed").select_related("to_user"):
            services.ownership_transfer_accept(actor=transfer.to_user, transfer=transfer)
