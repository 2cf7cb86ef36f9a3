"""Benchmarks (not part of `make test`): `python -m benchmarks [name ...]` runs each module's main().

They run with ``DEBUG`` off unless it is set, as in production: with it on, Django keeps the text
of the last 9,000 queries of the process, which for bulk writes is hundreds of MiB and seconds of
formatting — it measured 287 MiB peak for a 100,000-item campaign close."""

import os

os.environ.setdefault("DEBUG", "false")
