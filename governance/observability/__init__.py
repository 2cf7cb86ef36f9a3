"""Observability for operators: Prometheus metrics at /metrics and the audit trail streamed to a SIEM."""
