"""Benchmarks: `python -m bench` runs them all, each against a baseline in the same run."""
