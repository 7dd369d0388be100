"""Budget-constrained spaces: every proposal feasible, fixed distributions, >= 10x parameter span."""

from __future__ import annotations

import dataclasses
import math

import optuna
import pytest

from search_spaces import space_for
from study.adapter import GridSampler
from study.config import load_config, study_spec
from study.errors import ConfigError
from study.flops import forward_flops, param_count, step_flops

optuna.logging.set_verbosity(optuna.logging.WARNING)
FAMILIES = ("transformer", "transformer-aug", "gatr")


def _config(max_steps: int = 2000, *, batch_size: int = 64, bodies: int = 4):
    config = load_config()
    return dataclasses.replace(
        config, data=dataclasses.replace(config.data, bodies=bodies),
        training=dataclasses.replace(config.training, min_steps=100, max_steps=max_steps, batch_size=batch_size,
                                     lr_ranges=(), step_ranges=()))


def _sample(family: str, budget: float, config, n: int = 120, seed: int = 0):
    """Derived constants and the trials of n random proposals of the family's space at one budget."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    proposals = []
    for _ in range(n):
        trial = study.ask()
        proposals.append(space_for(family)(trial, study_spec(config, family, budget)))
        study.tell(trial, 0.0)
    return proposals, study.trials


@pytest.mark.parametrize("family, budget, tiny", [
    ("transformer", 1e10, False), ("transformer-aug", 4e10, False), ("gatr", 2e10, False), ("gatr", 3e11, False),
    ("transformer", 1e9, True), ("gatr", 1e9, True),  # coarse grids: some depths have no feasible size
])
def test_every_proposal_is_feasible_and_uses_its_budget(family, budget, tiny):
    config = _config(300, batch_size=16, bodies=3) if tiny else _config()
    t = config.training
    proposals, _ = _sample(family, budget, config)
    for p in proposals:
        f = forward_flops(family, bodies=config.data.bodies, **p.shape)  # recomputed from the shape trained
        assert p.forward_flops == f
        assert p.step_flops == step_flops(family, batch_size=t.batch_size, bodies=config.data.bodies, **p.shape)
        assert 2 * f * t.batch_size < p.step_flops <= 3 * f * t.batch_size  # backward as executed: <= 2 x forward
        assert p.steps == math.floor(budget / p.step_flops)
        assert t.min_steps <= p.steps <= t.max_steps
        assert 0.99 * budget <= p.step_flops * p.steps <= budget
        assert p.params == param_count(family, **p.shape)
        assert p.batch_size == t.batch_size


@pytest.mark.parametrize("family, budget", [("transformer", 1e10), ("transformer", 1e12), ("gatr", 2e10),
                                            ("gatr", 1e12)])
def test_proposals_at_one_budget_span_ten_times_in_parameters(family, budget):
    proposals, _ = _sample(family, budget, _config(), n=200)
    params = [p.params for p in proposals]
    assert max(params) / min(params) >= 10


def test_space_shape_is_fixed_within_a_study():
    _, trials = _sample("gatr", 4e10, _config(), n=40, seed=1)
    distributions = {tuple(sorted(t.distributions.items())) for t in trials}
    assert len(distributions) == 1
    assert set(trials[0].params) == {"depth", "fwd_flops", "lr"}


def test_lr_follows_the_configured_range():
    config = _config()
    proposals, trials = _sample("transformer", 1e10, config, n=50)
    lrs = [t.params["lr"] for t in trials]
    assert [p.lr for p in proposals] == lrs
    assert config.training.lr_min <= min(lrs) and max(lrs) <= config.training.lr_max


@pytest.mark.parametrize("family", FAMILIES)
def test_budget_below_the_smallest_shape_is_a_config_error_naming_it(family):
    with pytest.raises(ConfigError, match="1e\\+06"):
        space_for(family).check(study_spec(_config(), family, 1e6))


def test_unknown_family_is_a_config_error():
    with pytest.raises(ConfigError, match="mlp"):
        space_for("mlp")


def _grid_config(**changes):
    config = dataclasses.replace(_config(max_steps=20000), sampler="grid", trials=6)
    return dataclasses.replace(config, **changes)


@pytest.mark.parametrize("family, budget", [("transformer", 1e11), ("gatr", 1e11), ("transformer-aug", 1e12)])
def test_isoflop_grid_brackets_the_feasible_sizes_log_evenly_at_one_depth(family, budget):
    config = _grid_config()
    space = space_for(family)
    grid = space.grid(study_spec(config, family, budget), config.trials)
    study = optuna.create_study(sampler=GridSampler(grid, seed=0))
    proposals = []
    for _ in range(config.trials):
        trial = study.ask()
        proposals.append(space(trial, study_spec(config, family, budget)))
        study.tell(trial, 0.0)
    assert {p.shape["depth"] for p in proposals} == {config.training.grid_depth}
    params = sorted(p.params for p in proposals)
    assert len(set(params)) == config.trials                        # every grid point a different size
    ratios = [b / a for a, b in zip(params, params[1:])]
    assert max(ratios) / min(ratios) < 2.0                          # roughly log-even spacing
    assert params[-1] / params[0] >= 10                             # spans at least a decade of N
    assert all(0.99 * budget <= p.step_flops * p.steps <= budget for p in proposals)


def test_a_grid_that_cannot_meet_the_budget_is_a_config_error():
    deep = _grid_config(training=dataclasses.replace(_grid_config().training, grid_depth=9))
    with pytest.raises(ConfigError, match="depth 9"):
        space_for("transformer").grid(study_spec(deep, "transformer", 1e11), 6)
    with pytest.raises(ConfigError, match="fewer than 100000 trials"):
        space_for("gatr").grid(study_spec(_grid_config(), "gatr", 1e11), 100000)


def test_per_family_learning_rate_range_is_the_one_searched():
    base = _config()
    config = dataclasses.replace(base, training=dataclasses.replace(base.training, lr_ranges=(("gatr", 2e-3, 4e-3),)))
    proposals, _ = _sample("gatr", 2e10, config, n=40)
    assert all(2e-3 <= p.lr <= 4e-3 for p in proposals)
    others, _ = _sample("transformer", 1e10, config, n=40)
    assert min(p.lr for p in others) < 2e-3                         # other families keep lr_min..lr_max


def test_sqrt_lr_batch_scaling_moves_a_budgets_range_with_its_batch_and_no_other():
    """With lr_batch_scaling = "sqrt" a budget trained at 4x the reference batch searches 2x the range
    (grid: 2x its geometric mean); the reference budget, and any budget without scaling, keep the range."""
    base = _config(batch_size=64)
    lo, hi = 2e-3, 8e-3
    training = dataclasses.replace(base.training, lr_ranges=(("transformer", lo, hi),), batch_sizes=(64, 256),
                                   lr_batch_scaling="sqrt")
    config = dataclasses.replace(base, budgets=(1e11, 4e11), training=training)
    space = space_for("transformer")
    for budget, factor in ((1e11, 1.0), (4e11, 2.0)):
        proposals, _ = _sample("transformer", budget, config, n=40)
        assert all(factor * lo * (1 - 1e-12) <= p.lr <= factor * hi * (1 + 1e-12) for p in proposals)
        assert max(p.lr for p in proposals) > factor * hi * 0.8        # the range moved, not shrank
        assert space.grid(study_spec(config, "transformer", budget), 3)["lr"] == [pytest.approx(factor * 4e-3)]
    plain = dataclasses.replace(config, training=dataclasses.replace(training, lr_batch_scaling="none"))
    assert space.grid(study_spec(plain, "transformer", 4e11), 3)["lr"] == [pytest.approx(4e-3)]


def test_per_family_step_range_places_that_familys_grid_and_leaves_the_others():
    """A family's own step range bounds its grid's step counts (recomputed from each shape's step FLOPs);
    a family without one keeps min_steps..max_steps."""
    base = _grid_config()
    config = dataclasses.replace(base, trials=4,
                                 training=dataclasses.replace(base.training, step_ranges=(("transformer", 3000, 12000),)))
    budget = 3e11
    for family, (lo, hi) in (("transformer", (3000, 12000)), ("gatr", (100, 20000))):
        space = space_for(family)
        study = optuna.create_study(sampler=GridSampler(space.grid(study_spec(config, family, budget), config.trials), seed=0))
        steps = []
        for _ in range(config.trials):
            trial = study.ask()
            p = space(trial, study_spec(config, family, budget))
            study.tell(trial, 0.0)
            steps.append(math.floor(budget / step_flops(family, batch_size=config.training.batch_size, **p.shape)))
        assert all(lo <= s <= hi for s in steps), (family, steps)
        assert len(set(steps)) == config.trials
    # the transformer's grid moved: without the range its longest run is far beyond 12,000 steps
    wide = space_for("transformer").grid(study_spec(base, "transformer", budget), 4)["fwd_flops"]
    narrow = space_for("transformer").grid(study_spec(config, "transformer", budget), 4)["fwd_flops"]
    assert min(wide) < min(narrow) and max(narrow) <= max(wide)


def test_a_step_range_too_narrow_for_a_familys_sizes_is_a_config_error_naming_it():
    base = _grid_config()
    narrow = dataclasses.replace(base, training=dataclasses.replace(base.training, step_ranges=(("gatr", 3000, 3300),)))
    with pytest.raises(ConfigError, match="gatr"):
        space_for("gatr").grid(study_spec(narrow, "gatr", 3e10), 4)


def _isoflop_file(tmp_path, steps: tuple[int, int]):
    path = tmp_path / "study.toml"
    path.write_text(f"""families = ["gatr-2h"]
budgets = [1e11]
sampler = "isoflop"
[training]
batch_size = 64
lr_batch_scalings = {{ gatr-2h = "none" }}
step_ranges = {{ gatr-2h = [{steps[0]}, {steps[1]}] }}
grid_depth = 2
""")
    return path


def test_isoflop_trains_a_ladder_of_fewer_sizes_than_start_whole_and_refuses_fewer_than_three(tmp_path):
    """gatr-2h at 1e11 and batch 64 (even multivector channels only): 2, 4 and 6 channels train 2,459, 684 and
    about 320 steps, so a 300-step floor leaves 3 sizes (fewer than start = 5: accepted, as a sparse ladder's
    coarse grid always rounded to fewer) and a 600-step floor 2 (no minimum can be bracketed: refused)."""
    from study.samplers import isoflop

    config = load_config(_isoflop_file(tmp_path, (300, 21000)))
    spec = study_spec(config, "gatr-2h", 1e11)
    assert isoflop.ladder(spec).sizes == (2, 4, 6) and isoflop.settings(spec).start == 5
    with pytest.raises(ConfigError, match="only 2 gatr-2h sizes of depth 2 fit budget 1e\\+11, fewer than the 3"):
        load_config(_isoflop_file(tmp_path, (600, 21000)))
