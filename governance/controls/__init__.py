"""The control catalog: what the portal does to govern AI integrations, each control with live
evidence computed from the portal's data, mapped to the items of public frameworks (OWASP, CSA
MAESTRO, NIST) and the organisation's own. Kept as its own Django app (label ``controls``) in the
kernel: apps above register their controls here; this package imports none of them."""
