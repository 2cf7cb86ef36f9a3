"""Background tasks of the webhooks app. Tasks take ids and call a service; the sweep is
idempotent (a delivery is claimed before it is sent). Deliveries are queued by
``governance.webhooks.events.send_after_commit``, which names these functions by their path."""

from __future__ import annotations

from governance.context import task_context
from governance.webhooks import services
from governance.webhooks.models import DeliveryStatus


def delivery_send(delivery_id: int) -> str:
    """Send one delivery, then the next one about the same object (order is kept per object)."""
    with task_context(user=None):
        status = services.delivery_send(delivery_id=delivery_id)
        while status == DeliveryStatus.DELIVERED:
            following = services.next_in_line(delivery_id)
            if following is None:
                break
            delivery_id = following
            status = services.delivery_send(delivery_id=delivery_id)
    return status


def deliveries_sweep() -> int:
    """Periodic: send every due delivery (retries, and new ones whose enqueue was lost), oldest
    first so that an object's earlier events unblock its later ones in the same pass."""
    delivered = 0
    with task_context(user=None):
        for _round in range(10):
            ids = services.due_delivery_ids()
            if not ids:
                break
            progressed = False
            for delivery_id in ids:
                if services.delivery_send(delivery_id=delivery_id) == DeliveryStatus.DELIVERED:
                    delivered += 1
                    progressed = True
            if not progressed:
                break
    return delivered
