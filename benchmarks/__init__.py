"""Benchmarks run by scripts/bench. Each `bench_<name>.py` has `main() -> None` that prints its table."""
