"""Background tasks of the operators' observability: the audit stream to the SIEM sinks."""

from __future__ import annotations

from governance.observability import stream


def audit_stream() -> int:
    """Every minute: the audit events written since the last run, to every configured sink (up to
    ``stream.RUN_LIMIT`` each; the next run continues). Returns how many events were written;
    raises (the task fails, counted in ``governance_worker_task_failures``) when a sink could not
    take them, after the other sinks had their turn."""
    return sum(result.written for result in stream.stream_configured(limit=stream.RUN_LIMIT))
