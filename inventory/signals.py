"""What the inventory tells the apps above it (approvals), without importing them.

Every signal is sent by an ``inventory.services`` function *inside its transaction*, after the
rows are changed and audited; receivers do their work through their own service functions, so
the whole change commits or rolls back together. kwargs are listed per signal; ``actor`` is a
``governance.actors.Actor``.
"""

from django.dispatch import Signal

# The owner submitted a draft (or resubmitted a rejected / changes-requested one) for approval.
# kwargs: integration, actor, scopes (list[Scope]: the requested scopes to decide)
integration_submitted = Signal()

# An active integration's owners asked for more scopes. Only the added scopes are to be decided;
# what it already holds stays. kwargs: integration, actor, added_scopes (list[Scope])
integration_scopes_added = Signal()

# A change raised the integration's risk tier (e.g. low -> high): it needs a re-review.
# kwargs: integration, actor, old_tier (str), new_tier (str), factors (list[dict])
integration_risk_raised = Signal()

# The integration left the running states (suspended, retired) or its owner left (orphaned):
# open requests about it can no longer be decided. kwargs: integration, actor, status (str), reason
integration_disabled = Signal()

# A high or critical integration that is active or pending now proves a different workload
# identity (bound, changed or unbound): what was approved for the old one is reviewed again.
# kwargs: integration, actor, old_identity (str), new_identity (str) — each one line, e.g.
# "spiffe://example.org/ns/ai/sa/agent from spiffe://example.org", or "no workload binding"
integration_identity_changed = Signal()

# An integration's risk score or tier changed (after it is saved, whether the tier rose or
# fell): what copies them (the reviewer queue's keys) is rewritten. kwargs: integration
integration_rescored = Signal()
