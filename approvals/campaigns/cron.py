"""A definition's recurrence as people read it: the cron expression (UTC) described in words and
its next runs. The same check as the service (``services.cron_valid``, croniter) decides whether
it is valid; the words come from cron-descriptor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from cron_descriptor import ExpressionDescriptor, Options  # type: ignore[import-untyped]
from croniter import croniter

from approvals.campaigns.services import cron_valid

NEXT_RUNS = 3


@dataclass(frozen=True)
class CronExplanation:
    expression: str
    valid: bool
    description: str = ""
    next_runs: list[datetime] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "expression": self.expression,
            "valid": self.valid,
            "description": self.description,
            "next_runs": [run.strftime("%a %Y-%m-%d %H:%M UTC") for run in self.next_runs],
        }


def _in_words(expression: str) -> str:
    options = Options()
    options.use_24hour_time_format = True
    options.locale_code = "en_US"
    try:
        return str(ExpressionDescriptor(expression, options).get_description())
    except Exception:  # noqa: BLE001 - the library raises bare and odd errors on some inputs croniter accepts
        return ""


def cron_explain(expression: str, *, now: datetime | None = None) -> CronExplanation:
    """The expression in words ("At 09:00, on the first Monday of the month, only in January,
    April, July, and October") and its next three runs after ``now``; ``valid`` False when
    croniter refuses it. An empty expression is valid and never runs (campaigns by hand)."""
    expression = " ".join(expression.split())
    if not expression:
        return CronExplanation(expression="", valid=True, description="No schedule: runs are launched by hand.")
    if not cron_valid(expression):
        return CronExplanation(expression=expression, valid=False)
    start = (now or datetime.now(UTC)).astimezone(UTC)
    runs = croniter(expression, start)
    upcoming = [runs.get_next(datetime) for _ in range(NEXT_RUNS)]
    return CronExplanation(
        expression=expression,
        valid=True,
        description=f"{_in_words(expression)} (UTC)".lstrip(),
        next_runs=upcoming,
    )
