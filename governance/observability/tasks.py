"""Background tasks of the operators' observability: the audit stream to the SIEM sinks."""
