"""The best-loss frontier read at another family's compute (analysis.ratios._at), checked against log-linear
interpolation worked out here by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.ratios import SLACK, _at


def _loglinear(x, x0, y0, x1, y1):
    """y on the line through (x0, y0) and (x1, y1) in log-log coordinates."""
    slope = (math.log(y1) - math.log(y0)) / (math.log(x1) - math.log(x0))
    return y0 * (x / x0) ** slope


def test_inside_the_frontier_it_interpolates_log_linearly():
    xs, ys = np.array([100.0, 10.0, 1000.0]), np.array([0.02, 0.04, 0.015])     # unsorted on purpose
    assert _at(30.0, xs, ys) == pytest.approx(_loglinear(30.0, 10.0, 0.04, 100.0, 0.02))
    assert _at(300.0, xs, ys) == pytest.approx(_loglinear(300.0, 100.0, 0.02, 1000.0, 0.015))


def test_beyond_an_end_it_follows_the_end_segment_within_the_slack_only():
    xs, ys = np.array([10.0, 100.0, 1000.0]), np.array([0.04, 0.02, 0.015])
    assert _at(9.0, xs, ys) == pytest.approx(_loglinear(9.0, 10.0, 0.04, 100.0, 0.02))
    assert _at(1200.0, xs, ys) == pytest.approx(_loglinear(1200.0, 100.0, 0.02, 1000.0, 0.015))
    assert math.isnan(_at(10.0 / SLACK / 1.01, xs, ys)) and math.isnan(_at(1000.0 * SLACK * 1.01, xs, ys))


@pytest.mark.parametrize("below", [True, False])
def test_two_budgets_of_nearly_equal_cost_do_not_set_the_extrapolated_slope(below):
    """Seconds on a shared machine: two budgets 0.002% apart at the low end (the committed study's case). The
    end segment would have a slope of about -6,000 and send the loss to 0; the line to the next point at least
    ×SLACK away is used instead (and mirrored at the high end)."""
    xs = np.array([47.35539037, 47.35624677, 77.13377367, 253.23574212])
    ys = np.array([0.0404657, 0.04534255, 0.03436748, 0.0305772])
    if below:
        x, expected = 40.14, _loglinear(40.14, xs[0], ys[0], xs[2], ys[2])
    else:
        xs, ys = 1.0 / xs[::-1], ys[::-1]                  # the same frontier, its near-twins at the high end
        x, expected = 1.0 / 40.14, _loglinear(1.0 / 40.14, xs[-1], ys[-1], xs[-3], ys[-3])
    assert _at(x, xs, ys) == pytest.approx(expected, rel=1e-12)
    assert 0.03 < _at(x, xs, ys) < 0.06
