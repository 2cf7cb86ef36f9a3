"""Observability for operators: Prometheus metrics at /metrics and the audit trail streamed to a SIEM."""


def register() -> None:
    """Called once from ``GovernanceConfig.ready``: the kernel's metric sources, the settings'
    checks and the audit stream's schedule."""
    from governance import scheduling
    from governance.observability import checks, sources

    sources.register()
    checks.register()
    # Every minute: the audit events written since the last run, to the SIEM sinks configured.
    scheduling.register("audit-stream", "governance.observability.tasks.audit_stream", "* * * * *")
