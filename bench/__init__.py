"""Benchmarks that start the service for real, send it load and print figures and ratios."""

# The only database a benchmark creates and drops; bench/database.py refuses any other.
BENCH_DATABASE_NAME = "billing_bench"
