"""The relay's benchmark: `python -m bench.run`, `bench.profile` and `bench.micro`; see docs/performance.md."""
