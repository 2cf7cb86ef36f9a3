"""The control catalog's API: /api/v1/controls/ and /api/v1/frameworks/."""
