"""Every verdict rule of the report, each against inputs that flip it: a rule that calls 'better at every budget'
supported when the equivariant family is better at only some budgets, or that lets one budget decide a power
law alone, fails here."""

import numpy as np
import pytest

from analysis.bootstrap import Estimate
from analysis.heldout import HeldOut, LeaveOneOut, leave_one_budget_out
from analysis.ratios import Ratio
from analysis.verdicts import (CANNOT, NOT_SHOWN, NOT_SUPPORTED, SUPPORTED, better_everywhere, combine, gap_closed,
                               power_law, smaller_everywhere, split_differs)


def ratio(low, high, at=1.0, outside=""):
    value = (low + high) / 2
    return Ratio(at, "eq", "base", Estimate(value, low, high), value, 1.0, (5, 5), outside=outside)


LOWER, HIGHER, UNDECIDED = ratio(0.8, 0.9), ratio(1.1, 1.2), ratio(0.9, 1.1)


def test_better_at_every_budget_needs_every_budget():
    assert better_everywhere([LOWER, LOWER, LOWER])[0] == SUPPORTED
    assert better_everywhere([LOWER, UNDECIDED, UNDECIDED])[0] == NOT_SHOWN     # better at *some* budgets only
    assert better_everywhere([LOWER, LOWER, UNDECIDED])[0] == NOT_SHOWN
    assert better_everywhere([LOWER, HIGHER, LOWER])[0] == NOT_SUPPORTED
    assert better_everywhere([])[0] == CANNOT


def test_budgets_that_cannot_be_compared_are_named_not_counted():
    outside = ratio(0.5, 0.6, outside="outside the baseline's compute")
    status, note = better_everywhere([LOWER, outside])
    assert status == SUPPORTED and "compared at 1 of 2 budgets" in note
    assert better_everywhere([outside])[0] == CANNOT
    assert better_everywhere([HIGHER, outside])[0] == NOT_SUPPORTED


def _held(inside: bool) -> HeldOut:
    return HeldOut("f", 1e13, (1e11, 1e12, 3e12), 1.0, Estimate(1.0 if inside else 2.0, 0.9 if inside else 1.5,
                                                                  1.1 if inside else 2.5))


FALLS, RISES, FLAT = Estimate(0.05, 0.03, 0.07), Estimate(-0.05, -0.07, -0.03), Estimate(0.0, -0.01, 0.02)
STABLE, ONE_DECIDES = LeaveOneOut({1e11: 0.05, 1e12: 0.05}), LeaveOneOut({1e11: 0.01, 1e12: 0.05}, decisive=(1e11,))


def test_power_law_rule():
    assert power_law(FALLS, _held(True), STABLE)[0] == SUPPORTED
    assert power_law(FALLS, _held(False), STABLE)[0] == NOT_SUPPORTED        # the held-out prediction misses
    assert power_law(RISES, _held(True), STABLE)[0] == NOT_SUPPORTED
    assert power_law(FLAT, _held(True), STABLE)[0] == NOT_SHOWN
    assert power_law(Estimate(0.05, problem="no fit"), _held(True), STABLE)[0] == CANNOT


def test_a_single_budget_cannot_decide_a_power_law_alone():
    status, why = power_law(FALLS, _held(False), ONE_DECIDES)
    assert status == NOT_SHOWN and "1e+11" in why
    assert power_law(FALLS, _held(True), ONE_DECIDES)[0] == NOT_SHOWN          # nor support it alone


def test_leave_one_budget_out_finds_the_budget_that_decides_alone():
    budgets = np.repeat([1e11, 1e12, 3e12, 1e13], 3)
    loss = 0.1 * budgets ** -0.03 * np.tile([1.0, 1.01, 1.02], 4)
    exponent = Estimate(0.03, 0.029, 0.031)
    assert leave_one_budget_out(budgets, loss, exponent).decisive == ()
    loss = np.where(budgets == 1e11, loss * 1.5, loss)                          # one budget far off the law
    x = 1e11, 1e12, 3e12, 1e13
    full = -np.polyfit(np.log(x), np.log([loss[budgets == c].min() for c in x]), 1)[0]
    out = leave_one_budget_out(budgets, loss, Estimate(full, 0.6 * full, 1.4 * full))
    assert out.decisive == (1e11,)
    slope = -np.polyfit(np.log(x[1:]), np.log([loss[budgets == c].min() for c in x[1:]]), 1)[0]
    assert out.exponents[1e11] == pytest.approx(slope)                          # refit by hand without 1e11
    assert leave_one_budget_out(budgets[:9], loss[:9], exponent).problem       # 3 budgets: nothing to leave out


def test_split_rule():
    a, b = Estimate(0.3, 0.25, 0.35), Estimate(0.6, 0.55, 0.65)
    assert split_differs({"eq": a, "base": b})[0] == SUPPORTED
    assert split_differs({"eq": a, "base": Estimate(0.33, 0.3, 0.4)})[0] == NOT_SHOWN
    assert split_differs({"eq": a, "base": Estimate(0.3, problem="x")})[0] == CANNOT


def test_data_efficiency_and_gap_rules():
    assert smaller_everywhere([LOWER, LOWER]) == SUPPORTED
    assert smaller_everywhere([LOWER, UNDECIDED]) == NOT_SHOWN
    assert smaller_everywhere([LOWER, HIGHER]) == NOT_SUPPORTED
    assert gap_closed(Estimate(1.1, 1.02, 1.2)) == SUPPORTED
    assert gap_closed(Estimate(1.2, 1.08, 1.3)) == NOT_SUPPORTED
    assert gap_closed(Estimate(1.2)) == NOT_SHOWN
    assert gap_closed(Estimate(1.2, problem="x")) == CANNOT


def test_combine():
    assert combine([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert combine([SUPPORTED, NOT_SHOWN]) == NOT_SHOWN
    assert combine([SUPPORTED, NOT_SUPPORTED]) == NOT_SUPPORTED
    assert combine([SUPPORTED, CANNOT]) == NOT_SHOWN
    assert combine([CANNOT]) == CANNOT and combine([]) == CANNOT
