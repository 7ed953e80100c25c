"""Command-line options the benchmark scripts share."""

import argparse
import os


def positive_int(value: str) -> int:
    """Parse an option that counts something: an integer of at least 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def gunicorn_arguments_add(parser: argparse.ArgumentParser) -> None:
    """Add the options of the gunicorn a benchmark runs the service under (worker class, workers, threads)."""
    cores = os.cpu_count() or 1
    parser.add_argument(
        "--worker-class", choices=["gthread", "sync"], default="gthread", help="gunicorn worker class"
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=cores,
        help=f"gunicorn workers (default: one per core, {cores})",
    )
    parser.add_argument("--worker-threads", type=positive_int, default=4, help="threads per gthread worker")
