"""Benchmarks of modelrepl against plain transformers: `python benchmarks/run.py [--quick]`."""
