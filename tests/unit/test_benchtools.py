"""scripts/benchtools.ratio_interval: how make bench decides whether a
ratio of throughputs differs from 1 beyond the noise of its repetitions.
No database."""

from __future__ import annotations

import math

import pytest

from scripts.benchtools import ratio_interval


def test_identical_ratios_have_no_spread() -> None:
    assert ratio_interval([0.95, 0.95, 0.95]) == pytest.approx((0.95, 0.95, 0.95))


def test_the_mean_is_geometric_and_the_interval_symmetric_in_logarithms() -> None:
    mean, low, high = ratio_interval([0.5, 2.0])
    assert mean == pytest.approx(1.0)
    assert low * high == pytest.approx(1.0)
    # Two repetitions: t = 12.706 over a standard error of ln 2.
    assert math.log(high) == pytest.approx(12.706 * math.log(2.0))


def test_a_steady_loss_is_beyond_the_noise_and_a_scattered_one_is_not() -> None:
    _, _, high = ratio_interval([0.95, 0.94, 0.96, 0.95, 0.95])
    assert high < 1
    _, low, high = ratio_interval([1.33, 0.81, 1.03])
    assert low < 1 < high


def test_one_repetition_is_refused() -> None:
    with pytest.raises(ValueError):
        ratio_interval([0.9])
