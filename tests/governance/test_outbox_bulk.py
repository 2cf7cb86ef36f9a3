"""Many emails put in the outbox at once (``email_enqueue_many``): the same rows as one
``email_enqueue`` each, a key stored once however often it is given, a fixed number of queries
whatever the number of emails, one delivery task per email pushed to the broker together after
commit, and nothing queued when the transaction rolls back. (How tasks are pushed together:
``test_queue_fixes``.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from governance.models import EmailStatus, OutboundEmail, User
from governance.services import EmailSpec, email_enqueue, email_enqueue_many, outbox

pytestmark = pytest.mark.django_db

STORED = ("key", "recipient_id", "to_address", "subject", "body_text", "body_html", "status", "attempts")


def specs_for(users: list[User], prefix: str) -> list[EmailSpec]:
    """One email per user, with an ampersand and a line break to check escaping and subjects."""
    return [
        EmailSpec(
            key=f"{prefix}-{user.pk}",
            recipient=user,
            subject=f"R&D review\nfor {user.username}",
            template="governance_notice",
            context={"message": f"{index} items wait for R&D <{user.username}>.", "path": f"/items/{index}/"},
        )
        for index, user in enumerate(users)
    ]


def stored(prefix: str) -> list[tuple[Any, ...]]:
    """The stored emails of ``prefix`` with the prefix cut from their keys, by key."""
    rows = OutboundEmail.objects.filter(key__startswith=f"{prefix}-").order_by("key").values_list(*STORED)
    return [(key.removeprefix(f"{prefix}-"), *rest) for key, *rest in rows]


def queued_deliveries() -> list[tuple[str, tuple[Any, ...], str]]:
    """The delivery tasks in the database broker's queue: (function, arguments, task name)."""
    tasks = [SignedPackage.loads(payload) for payload in OrmQ.objects.order_by("pk").values_list("payload", flat=True)]
    return [(task["func"], task["args"], task["name"]) for task in tasks]


@pytest.fixture
def people(make_user: Callable[..., User]) -> list[User]:
    return [make_user(f"bulk{index}") for index in range(4)]


def test_many_store_the_same_rows_as_one_at_a_time(people: list[User]) -> None:
    with transaction.atomic():
        for spec in specs_for(people, "single"):
            email_enqueue(
                key=spec.key,
                recipient=spec.recipient,
                subject=spec.subject,
                template=spec.template,
                context=spec.context,
            )
        ids = email_enqueue_many(specs_for(people, "many"))
    single, many = stored("single"), stored("many")
    assert len(many) == len(people) and many == single
    assert "R&D <bulk0>" in many[0][4] and "R&amp;D &lt;bulk0&gt;" in many[0][5]  # text raw, HTML escaped
    assert all("\n" not in row[3] for row in many)  # subjects made header-safe
    by_key = dict(OutboundEmail.objects.filter(pk__in=ids).values_list("key", "pk"))
    assert ids == [by_key[spec.key] for spec in specs_for(people, "many")]  # in the order given


def test_a_key_already_stored_or_given_twice_is_stored_once(people: list[User]) -> None:
    first, *others = specs_for(people, "again")
    email_enqueue(
        key=first.key, recipient=first.recipient, subject=first.subject, template=first.template, context=first.context
    )
    ids = email_enqueue_many([first, *others, others[0]])
    assert len(ids) == len(others)
    assert set(OutboundEmail.objects.filter(pk__in=ids).values_list("key", flat=True)) == {s.key for s in others}
    assert email_enqueue_many(specs_for(people, "again")) == []  # a replay stores nothing
    assert OutboundEmail.objects.filter(key__startswith="again-").count() == len(people)


def test_a_person_without_an_address_gets_nothing_and_others_do(people: list[User]) -> None:
    User.objects.filter(pk=people[1].pk).update(email="")
    people[1].refresh_from_db()
    ids = email_enqueue_many(specs_for(people, "noaddr"))
    assert len(ids) == len(people) - 1
    assert not OutboundEmail.objects.filter(key=f"noaddr-{people[1].pk}").exists()
    to_auditors = EmailSpec(
        key="noaddr-mailbox", recipient=None, subject="Checkpoint", template="governance_notice",
        context={"message": "m", "path": "/"}, to_address="auditors@example.com",
    )  # fmt: skip
    (mailbox_id,) = email_enqueue_many([to_auditors])
    assert OutboundEmail.objects.get(pk=mailbox_id).to_address == "auditors@example.com"


def test_queries_do_not_grow_with_the_number_of_emails(make_user: Callable[..., User]) -> None:
    def queries_for(count: int, prefix: str) -> int:
        users = [make_user(f"{prefix}{index}") for index in range(count)]
        with CaptureQueriesContext(connection) as captured:
            assert len(email_enqueue_many(specs_for(users, prefix))) == count
        return len(captured)

    assert queries_for(2, "few") == queries_for(12, "more")


def test_one_delivery_task_per_email_is_queued_after_commit(
    people: list[User], django_capture_on_commit_callbacks: Any
) -> None:
    OrmQ.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            ids = email_enqueue_many(specs_for(people, "tasks"))
            assert OrmQ.objects.count() == 0  # nothing before commit
    assert len(callbacks) == 1
    assert queued_deliveries() == [("governance.tasks.outbox_deliver", (pk,), f"outbox-{pk}") for pk in ids]
    # The task a worker runs for one of them sends that email only.
    assert outbox.email_deliver(email_id=ids[0]) == EmailStatus.SENT
    assert OutboundEmail.objects.filter(pk__in=ids, status=EmailStatus.PENDING).count() == len(ids) - 1


def test_a_rolled_back_transaction_stores_and_queues_nothing(
    people: list[User], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            assert email_enqueue_many(specs_for(people, "rollback"))
            raise RuntimeError("the change that caused the emails failed")
    assert callbacks == []
    assert not OutboundEmail.objects.filter(key__startswith="rollback-").exists()


def test_a_row_a_concurrent_transaction_stored_first_is_kept_and_not_counted(
    people: list[User], monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = specs_for(people, "race")
    render = outbox._rendered_fields
    earlier = timezone.now() - timedelta(seconds=5)

    def render_after_another_writer(spec: EmailSpec) -> dict[str, Any] | None:
        fields = render(spec)
        if spec.key == specs[1].key and fields is not None:  # stored between the look-up and the insert
            OutboundEmail.objects.create(key=spec.key, **{**fields, "subject": "theirs"}, created_at=earlier)
        return fields

    monkeypatch.setattr(outbox, "_rendered_fields", render_after_another_writer)
    ids = email_enqueue_many(specs)
    assert len(ids) == len(people) - 1
    theirs = OutboundEmail.objects.get(key=specs[1].key)
    assert theirs.subject == "theirs" and theirs.pk not in ids
