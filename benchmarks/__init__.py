"""amongo benchmark harness: ``python -m benchmarks --help``."""
