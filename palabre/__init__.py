"""Palabre: settings, the `palabre` command and the wiring of the running service."""

__version__ = "0.1.0"
