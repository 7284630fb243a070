"""Shared code of the benchmarks (bench/*.py): the harness, a bench-only settings module, URL conf and tasks."""
