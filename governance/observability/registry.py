"""Where the business figures of /metrics come from: sources the apps register (the kernel its
outbox, webhooks, worker and audit trail; ``runtime.metrics`` and ``approvals.metrics`` theirs), so
the kernel imports none of them.

A source is a function returning metric families (``prometheus_client.core`` ``GaugeMetricFamily``
and friends) read from the database at scrape time: every process answers the same, whatever
served the requests. Each source runs a fixed number of queries however many rows there are (the
scrape's query count is asserted in the tests). Register in ``AppConfig.ready``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

Source = Callable[[], Iterable[Metric]]

# Figures about a stream of rows that never stops growing (token requests, policy decisions) are
# counted over this sliding window, through the rows' time index: a whole-table count would cost
# more at every scrape, and the decision log's retention purge would make it go backwards.
RECENT_SECONDS = 300

_SOURCES: dict[str, Source] = {}


def register_source(name: str, collect: Source) -> None:
    """Add (or replace) the source called ``name``; it becomes the ``source`` label of
    ``governance_metrics_source_up``."""
    _SOURCES[name] = collect


def sources() -> list[tuple[str, Source]]:
    return sorted(_SOURCES.items())


class DatabaseCollector:
    """Collects every registered source at scrape time. A source that fails is logged and
    reported as ``governance_metrics_source_up{source=...} 0``; the others are still served, so one
    broken query does not blind the operators to everything else."""

    def describe(self) -> list[Metric]:
        # Registering with a registry must not query the database.
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "governance_metrics_source_up",
            "Whether the source's figures could be read at this scrape (1) or not (0: see the logs).",
            labels=["source"],
        )
        for name, collect in sources():
            try:
                families = list(collect())
            except Exception:
                log.exception("The %r metrics could not be read at this scrape.", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up
