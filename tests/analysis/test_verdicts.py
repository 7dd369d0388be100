"""Every verdict rule of the report, each against inputs that flip it: a rule that calls 'better at every budget'
supported when the equivariant family is better at only some budgets, or that lets one budget decide a power
law alone, fails here."""

import numpy as np
import pytest

from analysis.bootstrap import Estimate
from analysis.heldout import HeldOut, LeaveOneOut, leave_one_budget_out
from analysis.ratios import Ratio
from analysis.verdicts import (CANNOT, NOT_SHOWN, NOT_SUPPORTED, NOT_TESTED, SUPPORTED, better_everywhere,
                               claim1_status, combine, gap_closes, more_efficient, over_sizes, power_law, split_differs)


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


def test_data_efficiency_rule_flips_with_each_ratio():
    # ratios are baseline ÷ equivariant: above 1 means the equivariant family is better
    assert more_efficient([HIGHER, HIGHER], sizes=3)[0] == SUPPORTED
    assert more_efficient([HIGHER, LOWER], sizes=3)[0] == NOT_SUPPORTED     # one small size flipped
    assert more_efficient([LOWER, LOWER], sizes=3)[0] == NOT_SUPPORTED
    assert more_efficient([HIGHER, UNDECIDED], sizes=3)[0] == NOT_SHOWN
    assert more_efficient([HIGHER, HIGHER], sizes=1)[0] == NOT_TESTED      # one size: no data-efficiency comparison
    assert more_efficient([], sizes=3)[0] == NOT_TESTED


SHRINKS, GROWS, FLAT = Estimate(-0.2, -0.3, -0.1), Estimate(0.2, 0.1, 0.3), Estimate(0.0, -0.1, 0.1)
CLOSED_R, OPEN_R = Estimate(1.02, 0.98, 1.06), Estimate(1.3, 1.2, 1.4)
DESIGN = {"lengths": (1000, 3000, 10000), "min_seeds": 2}


def test_gap_closing_rule_flips_with_slope_and_last_ratio():
    assert gap_closes(SHRINKS, CLOSED_R, **DESIGN)[0] == SUPPORTED
    assert gap_closes(GROWS, OPEN_R, **DESIGN)[0] == NOT_SUPPORTED            # slope and last ratio flipped
    assert gap_closes(SHRINKS, OPEN_R, **DESIGN)[0] == NOT_SHOWN              # last ratio flipped: shrinks, still open
    assert gap_closes(GROWS, CLOSED_R, **DESIGN)[0] == NOT_SHOWN              # slope flipped: closed but not shrinking
    assert gap_closes(FLAT, OPEN_R, **DESIGN)[0] == NOT_SHOWN
    assert gap_closes(FLAT, CLOSED_R, **DESIGN)[0] == NOT_SHOWN               # closed, but not shown to shrink
    assert gap_closes(Estimate(-0.2), CLOSED_R, **DESIGN)[0] == NOT_SHOWN     # no interval
    # the tolerance: the last ratio's lower end at 1.05 is closed, just above is not
    assert gap_closes(SHRINKS, Estimate(1.1, 1.05, 1.2), **DESIGN)[0] == SUPPORTED
    assert gap_closes(SHRINKS, Estimate(1.1, 1.0501, 1.2), **DESIGN)[0] == NOT_SHOWN


def test_gap_closing_rule_is_not_tested_when_the_design_cannot_separate_it():
    assert gap_closes(SHRINKS, CLOSED_R, lengths=(1000, 10000), min_seeds=2)[0] == NOT_TESTED       # 2 lengths
    assert gap_closes(SHRINKS, CLOSED_R, lengths=(1000, 2000, 9999), min_seeds=2)[0] == NOT_TESTED  # < 1 decade
    assert gap_closes(SHRINKS, CLOSED_R, lengths=(1000, 2000, 10000), min_seeds=2)[0] == SUPPORTED  # exactly 1
    assert gap_closes(SHRINKS, CLOSED_R, lengths=(1000, 3000, 10000), min_seeds=1)[0] == NOT_TESTED  # one seed
    assert gap_closes(GROWS, OPEN_R, lengths=(6000,), min_seeds=1)[0] == NOT_TESTED                 # v1 storage


def test_claim1_halves_over_sizes_and_together():
    assert over_sizes([SUPPORTED, SUPPORTED, NOT_TESTED]) == SUPPORTED      # the tested sizes decide
    assert over_sizes([SUPPORTED, NOT_SUPPORTED]) == NOT_SUPPORTED
    assert over_sizes([SUPPORTED, NOT_SHOWN]) == NOT_SHOWN
    assert over_sizes([NOT_TESTED, NOT_TESTED]) == NOT_TESTED and over_sizes([]) == NOT_TESTED
    assert claim1_status([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert claim1_status([SUPPORTED, NOT_TESTED]) == NOT_SHOWN              # half of the claim untested
    assert claim1_status([NOT_SUPPORTED, NOT_TESTED]) == NOT_SUPPORTED
    assert claim1_status([NOT_TESTED, NOT_TESTED]) == NOT_TESTED
    assert claim1_status([CANNOT, CANNOT]) == CANNOT


def test_combine():
    assert combine([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert combine([SUPPORTED, NOT_SHOWN]) == NOT_SHOWN
    assert combine([SUPPORTED, NOT_SUPPORTED]) == NOT_SUPPORTED
    assert combine([SUPPORTED, CANNOT]) == NOT_SHOWN
    assert combine([CANNOT]) == CANNOT and combine([]) == CANNOT
