"""The apps' dashboard panels as people see them: on /dashboard/ for IAM admins, reviewers and
auditors (organisation-wide figures, each chart with its summary and table, each number linked to
its list), a few of them on those roles' home pages, and none for anyone else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import AccessRequest
from governance.models import User
from inventory.discovery.models import Finding
from inventory.models import Credential, Integration, IntegrationStatus
from tests.runtime.activity_support import token_event

pytestmark = pytest.mark.django_db

APP_PANELS = (
    "sprawl",
    "risk-tiers",
    "credentials-vs-tokens",
    "approvals-throughput",
    "campaign-progress",
    "top-owners",
)
HOME_PANELS = ("risk-tiers", "approvals-throughput")


@pytest.fixture
def portal_data(owner: User) -> None:
    """A little of everything the panels count."""
    now = timezone.now()
    bot = Integration.objects.create(
        name="Deal desk copilot",
        kind="agent",
        purpose="Deals",
        business_owner=owner,
        status=IntegrationStatus.ACTIVE,
        risk_tier="critical",
        risk_score=90,
    )
    Credential.objects.create(integration=bot, type="api_key", identifier="key-1", created_at=now - timedelta(days=9))
    token_event(bot, at=now - timedelta(days=1))
    Finding.objects.create(kind="shadow", source="google", app_key="app-1", title="Unknown notes app")
    AccessRequest.objects.create(
        type="registration",
        integration=bot,
        requester=owner,
        risk_tier="critical",
        status="approved",
        created_at=now - timedelta(days=2, hours=5),
        closed_at=now - timedelta(days=2),
    )


@pytest.mark.parametrize("role", ["iam_admin", "reviewer", "auditor"])
def test_dashboard_shows_every_app_panel_with_org_wide_figures(role, request, portal_data, web_as):
    user = request.getfixturevalue(role)
    page = web_as(user).get("/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    for key in APP_PANELS:
        assert f'id="dashboard-{key}"' in html, key
    assert "/inventory/?status=active&amp;risk_tier=critical" in html
    assert "/inventory/?status=active&amp;owner=owner" in html
    assert "/discovery/findings/?kind=shadow&amp;status=active" in html
    assert "/runtime/activity/?outcome=issued&amp;since=" in html
    assert "1 active integration</a>, <strong>1</strong> of them high or critical risk." in html
    assert "5 h" in html, "the one request's time to decision"
    # Each of the five charts with data (campaigns: none running) has its summary and its table.
    for key in ("sprawl", "risk-tiers", "credentials-vs-tokens", "approvals-decided-per-week", "top-owners"):
        assert f'id="chart-{key}-summary"' in html, key
    assert html.count('class="chart-data"') >= 5


def test_every_app_panel_renders_on_an_empty_portal(iam_admin, web_as):
    page = web_as(iam_admin).get("/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    for key in APP_PANELS:
        assert f'id="dashboard-{key}"' in html, key
    assert "No campaign is running." in html
    assert "No active integration yet." in html


def test_reviewer_home_page_shows_the_home_panels_only(reviewer, portal_data, web_as):
    html = web_as(reviewer).get("/").content.decode()
    for key in APP_PANELS:
        assert (f'id="home-panel-{key}"' in html) is (key in HOME_PANELS), key


def test_business_user_sees_no_dashboard_panel(outsider, portal_data, web_as):
    client = web_as(outsider)
    assert client.get("/dashboard/").status_code == 404
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for key in APP_PANELS:
        assert f"panel-{key}" not in html
    assert "Deal desk copilot" not in html


def test_anonymous_is_sent_to_sign_in(client, portal_data):
    response = client.get("/dashboard/")
    assert response.status_code == 302 and "/login" in response["Location"]
