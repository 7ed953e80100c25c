"""The headline of a benchmark that alternates a baseline and a target: one ratio per round.

Measured in turns on a shared machine, a round of the baseline and the round of the target
that follows it see about the same machine; two rounds a minute apart may not. So the ratio is
taken within each round, and the headline is the median of those ratios. The ratio of the two
medians would mix rounds: one noisy round moves one median and not the other (bench/access
once printed rounds of 0.31, 1.01 and 1.02 and a headline of 0.45).
"""

import statistics
from collections.abc import Sequence


def round_ratios(*, targets: Sequence[float], baselines: Sequence[float]) -> list[float]:
    """Return each round's target / baseline, the two taken from the same round."""
    if len(targets) != len(baselines):
        raise ValueError(f"{len(targets)} target rounds for {len(baselines)} baseline rounds")
    return [target / baseline for target, baseline in zip(targets, baselines, strict=True)]


def median_ratio(ratios: Sequence[float]) -> float:
    """Return the median of the per-round ratios (NaN when there is no round)."""
    return statistics.median(ratios) if ratios else float("nan")


def ratios_text(ratios: Sequence[float]) -> str:
    """Return the rounds' ratios as the benchmarks print them: `0.31, 1.01, 1.02`."""
    return ", ".join(f"{ratio:.2f}" for ratio in ratios)
