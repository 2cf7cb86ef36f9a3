"""The campaign report's CSV shows formula-like values as text (OWASP CSV injection): an
integration's name and a reviewer's comment are typed by people the reader does not control."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from approvals.campaigns import services
from approvals.campaigns.models import ReviewItem
from governance.roles import Role

pytestmark = pytest.mark.django_db


def test_campaign_report_neutralises_formula_cells(
    make_user: Any,
    make_integration: Any,
    make_grant: Any,
    catalog: Any,
    make_definition: Any,
    launched: Any,
    iam_admin: Any,
    web_as: Any,
) -> None:
    alice = make_user("alice", Role.BUSINESS_USER)
    tech = make_user("tech", Role.BUSINESS_USER)
    make_grant(make_integration(alice, name="=1+2", technical_owner=tech), catalog["write"])
    campaign = launched(make_definition())
    item = ReviewItem.objects.get(campaign=campaign)
    assert item.reviewer is not None
    services.review_item_decide(actor=item.reviewer, item=item, decision="revoke", comment="-2+3 unused since May")
    response = web_as(iam_admin).get(f"/campaigns/{campaign.pk}/report.csv")
    [row] = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert row["integration"] == "'=1+2"
    assert row["comment"] == "'-2+3 unused since May"
