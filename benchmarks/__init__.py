"""Benchmarks (not part of `make test`): `python -m benchmarks [name ...]` runs each module's main()."""
