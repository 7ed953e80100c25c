"""Command-line option types the benchmark scripts share."""

import argparse


def positive_int(value: str) -> int:
    """Parse an option that counts something: an integer of at least 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number
