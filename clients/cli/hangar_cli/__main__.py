"""`python -m hangar_cli`, the same as the `hangar` console script."""

from hangar_cli.main import run

run()
