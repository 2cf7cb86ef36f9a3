"""Discovery's background work (django-q2 runs the public functions of this module)."""

from __future__ import annotations
