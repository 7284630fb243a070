"""hangar: the command-line client of Hangar."""

__version__ = "0.1.0"
