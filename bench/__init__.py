"""Odin's benchmarks: each module reports figures; ``python -m bench`` writes the report."""
