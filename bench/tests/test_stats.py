"""The headline of alternating rounds is the median of the per-round ratios."""

import math

import pytest

from bench.stats import median_ratio, ratios_text, round_ratios


def test_one_noisy_round_does_not_move_the_headline():
    # The run: the first round's floor came in a lull of other load, so the floor's
    # median moved and the target's did not; the ratio of the medians said 0.45.
    floors = [2000.0, 2000.0, 900.0]
    targets = [620.0, 2020.0, 918.0]

    ratios = round_ratios(targets=targets, baselines=floors)

    assert ratios == pytest.approx([0.31, 1.01, 1.02])
    assert median_ratio(ratios) == pytest.approx(1.01)
    assert ratios_text(ratios) == "0.31, 1.01, 1.02"


def test_the_ratio_of_the_medians_is_what_it_replaces():
    floors, targets = [2000.0, 2000.0, 900.0], [620.0, 2020.0, 918.0]

    ratio_of_medians = sorted(targets)[1] / sorted(floors)[1]

    assert ratio_of_medians == pytest.approx(0.46, abs=0.01)
    assert median_ratio(round_ratios(targets=targets, baselines=floors)) > 2 * ratio_of_medians


def test_an_even_number_of_rounds_takes_the_middle_two():
    assert median_ratio([0.5, 0.9, 1.0, 1.2]) == pytest.approx(0.95)


def test_no_round_is_no_figure():
    assert math.isnan(median_ratio([]))


def test_rounds_must_pair_up():
    with pytest.raises(ValueError, match="2 target rounds for 3 baseline rounds"):
        round_ratios(targets=[1.0, 2.0], baselines=[1.0, 2.0, 3.0])
