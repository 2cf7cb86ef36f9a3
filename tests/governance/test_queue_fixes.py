"""Many tasks queued at once (``governance.queue.enqueue_many``): one task per entry, each signed
as ``async_task`` signs one, pushed together (one insert per batch for the database broker, one
pipeline per batch for Redis), and never a failure of the caller. The outbox and the webhook
sends queue through it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.brokers.redis_broker import Redis
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from governance import queue
from governance.services import outbox
from governance.webhooks import events

pytestmark = pytest.mark.django_db

TASK = "governance.tasks.outbox_deliver"
REDIS_URL = settings.REDIS_URL or "redis://127.0.0.1:6379/7"


def queued() -> list[tuple[str, tuple[Any, ...], str]]:
    """The tasks in the database broker's queue, in the order pushed: (function, arguments, name)."""
    payloads = OrmQ.objects.order_by("pk").values_list("payload", flat=True)
    return [(task["func"], task["args"], task["name"]) for task in map(SignedPackage.loads, payloads)]


def inserts_into_the_queue(captured: CaptureQueriesContext) -> int:
    table = OrmQ._meta.db_table
    return sum(1 for query in captured.captured_queries if query["sql"].startswith(f'INSERT INTO "{table}"'))


def test_each_entry_is_one_task_pushed_in_one_insert() -> None:
    with CaptureQueriesContext(connection) as captured:
        queue.enqueue_many(TASK, [(7,), (8,), (9,)], name="outbox-{}")
    assert queued() == [(TASK, (7,), "outbox-7"), (TASK, (8,), "outbox-8"), (TASK, (9,), "outbox-9")]
    assert inserts_into_the_queue(captured) == 1


def test_many_entries_are_pushed_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue, "PUSH_BATCH", 2)
    with CaptureQueriesContext(connection) as captured:
        queue.enqueue_many(TASK, ([pk, "x"] for pk in range(5)), name="t-{}-{}")
    assert queued() == [(TASK, (pk, "x"), f"t-{pk}-x") for pk in range(5)]
    assert inserts_into_the_queue(captured) == 3


def test_one_entry_is_queued_as_enqueue_queues_it_and_none_queues_nothing() -> None:
    queue.enqueue_many(TASK, [], name="outbox-{}")
    assert queued() == []
    queue.enqueue_many(TASK, [(5,)], name="outbox-{}")
    assert queued() == [(TASK, (5,), "outbox-5")]


def test_the_outbox_and_the_webhook_sends_queue_through_it(django_capture_on_commit_callbacks: Any) -> None:
    outbox._schedule_deliveries([11, 12])
    with django_capture_on_commit_callbacks(execute=True):
        events.send_after_commit([21, 22])
    assert queued() == [
        ("governance.tasks.outbox_deliver", (11,), "outbox-11"),
        ("governance.tasks.outbox_deliver", (12,), "outbox-12"),
        (events.SEND_TASK, (21,), "webhook-21"),
        (events.SEND_TASK, (22,), "webhook-22"),
    ]


@pytest.fixture
def redis_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Redis]:
    """django-q2's Redis broker on a real server, on a queue of this test's own; it is the broker
    every ``async_task`` of the test gets."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"needs a Redis server at {REDIS_URL}")
    broker = Redis.__new__(Redis)
    broker.list_key, broker.connection = f"django_q:test-{uuid.uuid4().hex}:q", client
    monkeypatch.setattr("django_q.brokers.get_broker", lambda *args: broker)
    yield broker
    client.delete(broker.list_key)


class _RoundTrips:
    """Counts the pipelines executed and the pushes a Redis client sends on their own (the calls
    go to the server as before)."""

    def __init__(self, client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pipelines = 0
        self.single_pushes = 0
        execute, push = redis.client.Pipeline.execute, client.rpush

        def counted_execute(pipeline: redis.client.Pipeline, *args: Any, **kwargs: Any) -> Any:
            self.pipelines += 1
            return execute(pipeline, *args, **kwargs)

        def counted_push(*args: Any) -> Any:
            self.single_pushes += 1
            return push(*args)

        monkeypatch.setattr(redis.client.Pipeline, "execute", counted_execute)
        monkeypatch.setattr(client, "rpush", counted_push)


def test_tasks_go_to_redis_in_one_pipeline_per_batch(redis_broker: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue, "PUSH_BATCH", 3)
    trips = _RoundTrips(redis_broker.connection, monkeypatch)
    queue.enqueue_many(TASK, [(pk,) for pk in range(7)], name="outbox-{}")
    assert (trips.pipelines, trips.single_pushes) == (3, 0)
    # What a worker takes off the queue, in order: the signed tasks.
    taken = [redis_broker.dequeue() for _ in range(7)]
    tasks = [SignedPackage.loads(package) for ((_, package),) in taken]
    assert [(task["func"], task["args"], task["name"]) for task in tasks] == [
        (TASK, (pk,), f"outbox-{pk}") for pk in range(7)
    ]
    assert redis_broker.queue_size() == 0


def test_a_broker_that_cannot_be_reached_does_not_fail_the_caller(
    redis_broker: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # A port nothing listens on: the push fails as it does when Redis is down.
    redis_broker.connection = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    queue.enqueue_many(TASK, [(1,), (2,)], name="outbox-{}")
    assert "Could not queue 2 of 2 tasks outbox-{}" in caplog.text


def test_a_failure_in_a_later_batch_keeps_the_batches_pushed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(queue, "PUSH_BATCH", 2)
    push_all = queue._push_all

    def fail_on_the_second_batch(broker: Any, packages: list[str]) -> None:
        if OrmQ.objects.exists():
            raise ConnectionError("broker went away")
        push_all(broker, packages)

    monkeypatch.setattr(queue, "_push_all", fail_on_the_second_batch)
    queue.enqueue_many(TASK, [(pk,) for pk in range(5)], name="outbox-{}")
    assert [args for _, args, _ in queued()] == [(0,), (1,)]
    assert "Could not queue 3 of 5 tasks" in caplog.text
