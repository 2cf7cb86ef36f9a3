"""The runtime's background work (django-q2): sealing the token log into the audit chain and
feeding usage back to the grants, and rotating signing keys."""
