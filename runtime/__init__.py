"""What happens when an integration acts: workload tokens verified against trusted issuers,
token exchange for short-lived access tokens, signing keys, introspection and revocation, and
the log of every issuance and refusal. The top layer: it may use governance, inventory and
approvals; nothing below imports it."""
