"""L(C) power laws and loss ratios between families."""

import numpy as np
import pandas as pd
import pytest

from analysis.power import best_per_budget, fit_power_law, fit_power_law_irreducible, loss_ratios
from study.errors import EquiscaleError

C = np.geomspace(1e12, 1e17, 6)


def test_power_law_recovers_exact_law():
    law = fit_power_law(C, 40.0 * C**-0.12)
    assert law.coef == pytest.approx(40.0, rel=1e-9) and law.exponent == pytest.approx(0.12, rel=1e-9)


def test_irreducible_term_recovered():
    law = fit_power_law_irreducible(C, 0.3 + 40.0 * C**-0.12)
    assert law.E == pytest.approx(0.3, rel=1e-4)
    assert law.exponent == pytest.approx(0.12, rel=1e-4) and law.coef == pytest.approx(40.0, rel=1e-3)


def test_best_per_budget_takes_the_minimum():
    c, best = best_per_budget([1, 1, 2, 2, 2], [3.0, 2.0, 5.0, 4.0, 6.0])
    assert list(c) == [1, 2] and list(best) == [2.0, 4.0]


def test_too_few_budgets_and_bad_values():
    with pytest.raises(EquiscaleError, match="at least 3 budgets"):
        fit_power_law(C[:2], [1.0, 0.9])
    with pytest.raises(EquiscaleError, match="at least 4 budgets"):
        fit_power_law_irreducible(C[:3], [1.0, 0.9, 0.8])
    with pytest.raises(EquiscaleError, match="loss must be positive"):
        fit_power_law(C[:3], [1.0, np.nan, 0.8])


def test_loss_ratios_against_the_transformer():
    table = pd.DataFrame({
        "family": ["gatr", "gatr", "transformer", "transformer", "gatr", "transformer"],
        "budget": [1e12, 1e12, 1e12, 1e12, 1e13, 1e13],
        "loss": [0.5, 0.4, 1.0, 0.8, 0.3, 0.6],
    })
    ratio = loss_ratios(table, reference="transformer")
    assert list(ratio.columns) == ["gatr/transformer"]
    np.testing.assert_allclose(ratio["gatr/transformer"].to_numpy(), [0.4 / 0.8, 0.3 / 0.6])
