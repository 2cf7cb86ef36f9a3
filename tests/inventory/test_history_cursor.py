"""An integration's history read a page at a time, cut on time: walking the pages either way
gives the whole timeline once, in order, even when the sources record changes at the same
instant; a page costs the same queries however long the timeline; the parameters are checked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from governance.audit import audit_record
from governance.models import AuditEvent, User
from inventory import services, timeline
from inventory.discovery.models import DiscoveredApp, Finding
from inventory.models import Integration


def _changed(owner: User, integration: Integration, count: int) -> None:
    """``count`` changes of the purpose, each a history row and an audit event."""
    for number in range(count):
        integration.refresh_from_db()
        services.integration_update(
            actor=owner, integration=integration, values={"purpose": f"Summarises meeting {number}."}
        )


def _finding_events(actor: User, integration: Integration, count: int, app_key: str = "notes-app") -> None:
    """``count`` audit events about a discovery finding claimed for ``integration``."""
    app = DiscoveredApp.objects.create(source="google", app_key=app_key, name="Notes app", people_count=3)
    found = Finding.objects.create(kind="shadow", source="google", app_key=app_key, title="Notes", app=app)
    found.integration = integration
    found.save(update_fields=["integration"])
    for number in range(count):
        with transaction.atomic():
            audit_record(actor=actor, action="discovery.finding_noted", target=found, after={"note": number})


@pytest.fixture
def busy(owner: User, make_integration: Callable[..., Integration]) -> Integration:
    """An integration with about 30 entries from all three sources recorded at three instants
    (the clock stopped), so the sources tie with each other and within themselves."""
    start = timezone.now() - timedelta(days=3)
    with time_machine.travel(start, tick=False):
        integration = make_integration(owner)
        _changed(owner, integration, 3)
    with time_machine.travel(start + timedelta(days=1), tick=False):
        _changed(owner, integration, 3)
        _finding_events(owner, integration, 3)
    with time_machine.travel(start + timedelta(days=2), tick=False):
        _finding_events(owner, integration, 2, app_key="other-app")
        _changed(owner, integration, 2)
    return integration


def _walk(client: Any, url: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every entry following ``next`` from ``url``, and the URLs of the pages read."""
    entries: list[dict[str, Any]] = []
    pages: list[str] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        entries += body["results"]
        pages.append(url)
        url = body["next"]
        assert len(pages) < 200, "the walk does not end"
    return entries, pages


def _whole(integration: Integration, api: Any) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/integrations/{integration.pk}/history/?page_size=200")
    assert response.json()["next"] is None
    return list(response.json()["results"])


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_walking_the_pages_gives_the_whole_timeline_once_in_order(
    busy: Integration, owner: User, api_as: Any, size: int
) -> None:
    api = api_as(owner)
    whole = _whole(busy, api)
    events = AuditEvent.objects.filter(target_type__in=["inventory.integration", "discovery.finding"]).count()
    history_rows = busy.history.count()
    # Every audit event is an entry; every history row too (each changed something shown).
    assert len(whole) == events + history_rows
    assert [entry["at"] for entry in whole] == sorted((entry["at"] for entry in whole), reverse=True)
    assert len({entry["at"] for entry in whole}) == 3
    assert {entry["source"] for entry in whole} == {"history", "audit"}
    walked, pages = _walk(api, f"/api/v1/integrations/{busy.pk}/history/?page_size={size}")
    assert walked == whole
    assert len(pages) >= len(whole) // size
    # And back: from the last page, ``previous`` leads through the same pages to the newest.
    backwards: list[dict[str, Any]] = []
    url = pages[-1]
    while url:
        body = api.get(url).json()
        backwards = body["results"] + backwards
        url = body["previous"]
    assert backwards == whole


class HistoryShape:
    """What the API shows of an entry, to compare the module's entries with the answer's."""

    @staticmethod
    def of(entries: list[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
        return [(entry["source"], entry["action"], entry["who"], len(entry["changes"])) for entry in entries]


def test_the_whole_timeline_read_at_once_is_the_pages_joined(busy: Integration, owner: User, api_as: Any) -> None:
    read = timeline.integration_timeline(busy)
    assert HistoryShape.of(read) == HistoryShape.of(_whole(busy, api_as(owner)))


def test_changes_recorded_while_walking_are_neither_repeated_nor_lost(
    owner: User, make_integration: Callable[..., Integration], api_as: Any
) -> None:
    integration = make_integration(owner)
    _changed(owner, integration, 6)
    api = api_as(owner)
    first = api.get(f"/api/v1/integrations/{integration.pk}/history/?page_size=4").json()
    _changed(owner, integration, 2)  # newer than every page: the walk continues where it was
    rest, _ = _walk(api, first["next"])
    walked = first["results"] + rest
    whole = _whole(integration, api)
    assert len(whole) > len(walked) and whole[len(whole) - len(walked) :] == walked
    # Back from the second page: the entries of the first, not the newer ones.
    newer = api.get(first["next"]).json()["previous"]
    assert api.get(newer).json()["results"] == first["results"]


def _queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries.captured_queries)


def test_a_page_costs_the_same_queries_however_long_the_timeline(
    owner: User, make_integration: Callable[..., Integration], api_as: Any, django_assert_num_queries: Any
) -> None:
    short, long = make_integration(owner), make_integration(owner, name="Long bot")
    _changed(owner, short, 3)
    _changed(owner, long, 40)
    api = api_as(owner)
    counts = []
    for integration in (short, long):
        url = f"/api/v1/integrations/{integration.pk}/history/?page_size=3"
        second = api.get(url).json()["next"]
        deep = _walk(api, url)[1][-1]
        back = api.get(deep).json()["previous"]
        counts.append([_queries(api, url), _queries(api, second), _queries(api, deep), _queries(api, back)])
    assert counts[0] == counts[1]
    # Rows, the related sets at them (scopes, their codes, invoked integrations), the events
    # about the integration and the ids of its findings (it has none: no events of theirs to
    # read); a newer page also reads the history row before it.
    with django_assert_num_queries(6):
        page = timeline.timeline_page(long, size=5)
    assert page.older is not None
    with django_assert_num_queries(6):
        older = timeline.timeline_page(long, size=5, cursor=page.older)
    assert older.newer is not None
    with django_assert_num_queries(7):
        timeline.timeline_page(long, size=5, cursor=older.newer)


def test_a_page_reads_the_events_of_the_findings_in_one_more_query(
    busy: Integration, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(7):
        first = timeline.timeline_page(busy, size=4)
    assert first.older is not None
    with django_assert_num_queries(7):
        timeline.timeline_page(busy, size=4, cursor=first.older)


@pytest.mark.parametrize(
    ("cursor", "status"),
    [
        ("", 200),  # empty counts as absent
        ("garbage!", 400),  # outside the published pattern
        ("%C3%A9t%C3%A9", 400),
        ("A" * 201, 400),  # longer than published
        ("MXxvfG5vdC1hLXRpbWV8aHwx", 422),  # in the pattern, but not a cursor the portal wrote
        ("Mnxv", 422),
    ],
)
def test_a_malformed_cursor_is_refused_naming_it(
    busy: Integration, owner: User, api_as: Any, cursor: str, status: int
) -> None:
    response = api_as(owner).get(f"/api/v1/integrations/{busy.pk}/history/?cursor={cursor}")
    assert response.status_code == status, response.content
    if status != 200:
        assert response["Content-Type"].startswith("application/problem+json")
        assert list(response.json()["errors"]) == ["cursor"]


def test_a_cursor_names_a_time_and_a_row_and_nothing_else() -> None:
    position = timeline.Position(timezone.now(), timeline.AUDIT_RANK, 42)
    for cursor in (timeline.Cursor(position), timeline.Cursor(position, newer=True)):
        assert timeline.Cursor.decode(cursor.encode()) == cursor
    for text in (
        "1|o|2026-01-01T00:00:00|h|1",  # no time zone
        "1|o|2026-01-01T00:00:00+00:00|x|1",  # no such source
        "2|o|x|h|1",
        "1|o|0001-01-01T00:00:00+14:00|h|1",  # before the calendar in UTC
        "1|o|2026-01-01T00:00:00+00:00|h|9999999999999999999",  # beyond any key
        "1|o|2026-01-01T00:00:00+00:00|h|-1",
        "1|s|2026-01-01T00:00:00+00:00|h|1",  # no such direction
    ):
        token = timeline.base64.urlsafe_b64encode(text.encode()).decode()
        with pytest.raises(timeline.MalformedCursor):
            timeline.Cursor.decode(token)


def test_outsiders_get_a_404_with_or_without_a_cursor(
    busy: Integration, outsider: User, owner: User, api_as: Any
) -> None:
    url = f"/api/v1/integrations/{busy.pk}/history/"
    following = api_as(owner).get(f"{url}?page_size=2").json()["next"]
    assert following
    assert api_as(outsider).get(url).status_code == 404
    assert api_as(outsider).get(following).status_code == 404
    assert api_as(outsider).get(f"{url}?cursor=garbage").status_code == 404


@pytest.mark.parametrize(
    ("size", "status"), [("0", 400), ("201", 400), ("abc", 400), ("-1", 400), ("200", 200), ("1", 200)]
)
def test_page_size_has_the_bounds_of_every_list(
    busy: Integration, owner: User, api_as: Any, size: str, status: int
) -> None:
    response = api_as(owner).get(f"/api/v1/integrations/{busy.pk}/history/?page_size={size}")
    assert response.status_code == status, response.content
    if status == 400:
        assert "page_size" in response.json()["errors"]
    else:
        assert len(response.json()["results"]) == min(int(size), len(_whole(busy, api_as(owner))))


def test_the_default_page_holds_fifty(owner: User, make_integration: Callable[..., Integration], api_as: Any) -> None:
    integration = make_integration(owner)
    _changed(owner, integration, 30)
    body = api_as(owner).get(f"/api/v1/integrations/{integration.pk}/history/").json()
    assert len(body["results"]) == 50 and body["next"] and body["previous"] is None


def test_the_detail_page_shows_a_page_of_the_timeline_and_links_to_older_changes(
    owner: User, make_integration: Callable[..., Integration], web_as: Any
) -> None:
    integration = make_integration(owner)
    _changed(owner, integration, 60)
    web = web_as(owner)
    detail = reverse("inventory:detail", args=[integration.pk])
    first = web.get(detail).content.decode()
    assert "Older changes" in first and "Newer changes" not in first
    older = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = web.get(f"{detail}{older.split('#')[0]}").content.decode()
    assert second.count('class="history-entry"') > 0 and "Newer changes" in second
    # The oldest change (the registration) is on a later page, not the first.
    assert 'data-action="integration.registered"' not in first
    # A cursor the page cannot read shows the newest changes.
    assert web.get(f"{detail}?changes=garbage").status_code == 200
