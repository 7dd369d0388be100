"""Study kind "data": its study file, its checks, the per-epoch validation schedule, training on a subset,
and (slow) a tiny data study end to end beside a compute study in one storage."""

from __future__ import annotations

import math
import os
from dataclasses import replace

import numpy as np
import optuna
import pytest
import torch

from search_spaces.fixed import FixedShapeSpace
from study.benchmark import load_dataset
from study.cli import main
from study.config import (DataConfig, DataStudyConfig, ResourceConfig, StudyConfig, TrainingConfig, load_config, validate,
                          with_overrides)
from study.errors import ConfigError
from study.flops import step_flops
from study.records import TrialPlan
from study.training import epoch_eval_steps, train
from tests.tiny import tiny_config

DATA_HEAD = 'kind = "data"\nfamilies = ["transformer"]\n'
SHAPES = '[data_study]\ntrain_sizes = [64, 128]\nsteps = 50\nshapes = { transformer = { width = 16, depth = 1 } }\n'
SMALL_DATA = '[data]\nscenes = 300\nbodies = 3\n'
V2 = ('[data_study]\ntrain_sizes = [64, 128]\nlengths = [10, 30, 100]\nall_lengths_max_size = 64\n'
      'shapes = { transformer = { width = 16, depth = 1 } }\n')


def tiny_data_config(storage: str, *, families=("transformer", "gatr"), sizes=(32, 128), steps=40,
                     trials=2) -> StudyConfig:
    shapes = {"transformer": {"width": 16, "depth": 1}, "gatr": {"mv_channels": 2, "s_channels": 4, "depth": 1}}
    config = StudyConfig(
        families=tuple(families), kind="data", trials=trials, storage=storage, seed=0, sampler="grid",
        data=DataConfig(scenes=300, bodies=3, seed=0),
        data_study=DataStudyConfig(train_sizes=tuple(sizes), steps=steps,
                                   shapes=tuple((f, tuple(sorted(shapes[f].items()))) for f in families)),
        training=TrainingConfig(batch_size=16, evals=6, val_samples=64),
        resources=ResourceConfig(cpus_per_trial=1, max_concurrent=2, max_failures=1),
    )
    validate(config)
    return config


def test_the_committed_data_study_file_is_the_v2_design_on_one_dataset():
    """Sizes 2^8 .. 2^16; >= 3 lengths spanning >= 1 decade at 256, 1,024 and 4,096 scenes, the longest above;
    the lr grid of >= 5 points with extensions and 2 seeds; the no-translation control at one size; a time cap."""
    config = load_config("studies/data.toml")
    ds = config.data_study
    assert config.kind == "data" and min(ds.train_sizes) == 2**8 and max(ds.train_sizes) == 2**16
    assert max(ds.train_sizes) <= config.data.benchmark().split_sizes()[0]
    assert {f for f, _ in ds.shapes} == set(config.families) == {"gatr", "transformer", "transformer-aug",
                                                                 "transformer-aug-notrans"}
    assert len(ds.lengths) >= 3 and ds.lengths[-1] >= 10 * ds.lengths[0]
    assert config.sampler == "lrgrid" and config.sampler_settings.points >= 5 and config.sampler_settings.seeds == 2
    assert config.sampler_settings.extend >= 1 and config.training.time_cap_seconds > 0
    assert dict(config.claims)["no_translation"] == "transformer-aug-notrans"
    specs = config.specs()
    by_family: dict[str, set] = {}
    for spec in specs:
        shape = ds.shape(spec.family_name)
        assert spec.budget == spec.steps * step_flops(spec.family_name, batch_size=64, bodies=4, **shape)
        assert spec.name == f"data/{spec.family_name}/{spec.train_size}/{spec.steps}"
        by_family.setdefault(spec.family_name, set()).add((spec.train_size, spec.steps))
    for family in ("transformer", "transformer-aug", "gatr"):
        assert {(n, L) for n in (256, 1024, 4096) for L in ds.lengths} <= by_family[family]
        assert {(n, ds.lengths[-1]) for n in (16384, 65536)} <= by_family[family]
        assert len(by_family[family]) == 3 * len(ds.lengths) + 2
    assert by_family["transformer-aug-notrans"] == {(1024, L) for L in ds.lengths}


def test_data_study_lengths_give_one_study_per_family_size_and_length(tmp_path):
    path = tmp_path / "v2.toml"
    path.write_text(DATA_HEAD.replace('["transformer"]', '["transformer", "transformer-aug-notrans"]') + SMALL_DATA
                    + V2.replace("shapes = { transformer = { width = 16, depth = 1 } }",
                                 "shapes = { transformer = { width = 16, depth = 1 }, transformer-aug-notrans = "
                                 "{ width = 16, depth = 1 } }\nsizes = { transformer-aug-notrans = [64] }"))
    names = [spec.name for spec in load_config(path).specs()]
    assert names == ["data/transformer/64/10", "data/transformer/64/30", "data/transformer/64/100",
                     "data/transformer/128/100", "data/transformer-aug-notrans/64/10",
                     "data/transformer-aug-notrans/64/30", "data/transformer-aug-notrans/64/100"]
    path.write_text(DATA_HEAD + SMALL_DATA + V2.replace("all_lengths_max_size = 64\n", ""))
    assert len(load_config(path).specs()) == 6                       # 0: every size trains every length


@pytest.mark.parametrize("text, match", [
    (DATA_HEAD + SMALL_DATA, "train_sizes"),
    (DATA_HEAD + "budgets = [1e10]\n" + SMALL_DATA + SHAPES, "has no budgets"),
    ('kind = "big"\nfamilies = ["transformer"]\nbudgets = [1e10]\n', "unknown study kind 'big'"),
    ('families = ["transformer"]\nbudgets = [1e10]\n' + SHAPES, 'needs kind = "data"'),
    (DATA_HEAD + SMALL_DATA + SHAPES.replace("128]", "100000]"), "1..270"),
    (DATA_HEAD + SMALL_DATA + SHAPES.replace("steps = 50", "steps = 2"), "less than one epoch"),
    (DATA_HEAD + SMALL_DATA + SHAPES.replace("transformer = ", "gatr = "), "no shape for family 'transformer'"),
    (DATA_HEAD + SMALL_DATA + SHAPES.replace("}", "}, mlp = { width = 8 }", 1), "mlp"),
    (DATA_HEAD.replace('["transformer"]', '["transformer", "gatr"]') + SMALL_DATA + SHAPES, "no shape for family 'gatr'"),
    (DATA_HEAD + SMALL_DATA + SHAPES.replace("width = 16", "width = 0"), "width"),
    (DATA_HEAD + SMALL_DATA + SHAPES.replace("[64, 128]", "[64, 64]"), "duplicate size"),
    (DATA_HEAD + SMALL_DATA + SHAPES.replace("width = 16", "width = 1.5"), "width"),
    (DATA_HEAD + SMALL_DATA + V2.replace("[10, 30, 100]", "[30, 10, 100]"), "increasing"),
    (DATA_HEAD + SMALL_DATA + V2.replace("[10, 30, 100]", "[10, 10, 100]"), "without repeats"),
    (DATA_HEAD + SMALL_DATA + V2.replace("[10, 30, 100]", "[0, 30, 100]"), "positive"),
    (DATA_HEAD + SMALL_DATA + V2.replace("lengths =", "steps = 50\nlengths ="), "not both"),
    (DATA_HEAD + SMALL_DATA + V2.replace("[10, 30, 100]", "[1, 30, 100]"), "less than one epoch of a training set of 64"),
    (DATA_HEAD + SMALL_DATA + V2.replace("[10, 30, 100]", "[2, 30, 100]").replace("= 64\n", "= 128\n"),
     "2 steps x training.batch_size = 64 samples is less than one epoch of a training set of 128"),
    (DATA_HEAD + SMALL_DATA + V2 + "sizes = { mlp = [64] }\n", "sizes: unknown model family 'mlp'"),
    (DATA_HEAD + SMALL_DATA + V2 + "sizes = { transformer = [64, 64] }\n", "duplicate size in data_study.sizes"),
    (DATA_HEAD + SMALL_DATA + V2 + "sizes = { transformer = [] }\n", "sizes.transformer is empty"),
    (DATA_HEAD + SMALL_DATA + V2 + "sizes = { transformer = [100000] }\n", "1..270"),
    (DATA_HEAD + SMALL_DATA + V2.replace("= 64\n", "= -1\n"), "all_lengths_max_size"),
])
def test_bad_data_study_settings_are_one_config_error(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_a_run_of_some_families_of_a_data_study_file_keeps_their_shapes():
    config = with_overrides(load_config("studies/data.toml"), families=["gatr"])
    ds = config.data_study
    assert [spec.name for spec in config.specs()] == [f"data/gatr/{n}/{length}" for n in ds.train_sizes
                                                      for length in ds.lengths_at(n)]


def test_a_bad_data_study_file_exits_2_and_leaves_the_storage_untouched(tmp_path, capsys):
    path = tmp_path / "kept.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(storage=f"sqlite:///{path}", study_name="transformer/1e+10")
    snapshot = (path.read_bytes(), os.stat(path).st_mtime_ns)
    study_file = tmp_path / "bad.toml"
    study_file.write_text(DATA_HEAD + SMALL_DATA + SHAPES.replace("128]", "100000]"))
    assert main(["run", str(study_file), "--storage", f"sqlite:///{path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train_sizes" in err
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == snapshot


@pytest.mark.parametrize("steps, batch, n, evals", [(6000, 64, 256, 16), (6000, 64, 65536, 16), (40, 16, 32, 6),
                                                     (100, 10, 30, 4), (7, 16, 8, 5), (10, 8, 100, 3)])
def test_validations_fall_at_the_ends_of_log_spaced_whole_epochs(steps, batch, n, evals):
    at = epoch_eval_steps(steps, batch_size=batch, train_size=n, evals=evals)
    total = steps * batch // n                       # whole epochs the run completes
    if total == 0:
        assert at == ()
        return
    # an independent count: the step in which sample number e*n is drawn ends epoch e
    ends = {e: -(-(e * n) // batch) for e in range(1, total + 1)}
    assert set(at) <= set(ends.values()) and len(at) <= evals
    assert at[-1] == ends[total] and at[0] == ends[1]      # the first and the last whole epoch are both recorded
    epochs = sorted(e for e, s in ends.items() if s in at)
    # log-spaced: with ratio r = total^(1/(evals-1)), rounding to whole epochs lets a step grow to at most r·a + (r+1)/2
    r = total ** (1 / max(1, evals - 1))
    assert all(b <= r * a + (r + 1) / 2 for a, b in zip(epochs, epochs[1:]))
    plan = TrialPlan(family="transformer", budget=1.0, shape={}, lr=1e-3, steps=steps, batch_size=batch,
                     step_flops=1.0, forward_flops=1.0, params=1, seed=0, train_size=n)
    assert [plan.curve_step(s) for s in at] == [s * batch // n for s in at]
    if batch <= n:
        assert [plan.curve_step(s) for s in at] == epochs     # the curve is per epoch


def test_a_data_study_run_trains_only_on_its_first_train_size_scenes(tmp_path):
    """Scenes past `train_size` are poisoned with NaN: a run that touched one would diverge."""
    config = tiny_data_config(f"sqlite:///{tmp_path / 'x.db'}", families=("transformer",), sizes=(48,), steps=30)
    dataset = load_dataset(config.data.benchmark(), cache_dir=tmp_path / "cache")
    poisoned = dataset.train.pos0.clone()
    poisoned[48:] = float("nan")
    dataset = replace(dataset, train=replace(dataset.train, pos0=poisoned))
    spec = config.specs()[0]
    from study.tune import plan_defaults

    proposal = spec.space(optuna.trial.FixedTrial({"lr": 2e-3}), spec)
    plan = plan_defaults(spec, config.resources).plan(proposal, seed=1)
    seen = []
    result = train(plan, dataset, report=lambda step, val: seen.append(step))
    assert math.isfinite(result.val_loss) and math.isfinite(result.train_loss)
    assert result.epochs == pytest.approx(30 * 16 / 48) and result.steps * 16 == result.samples
    assert seen == list(plan.eval_at) and plan.train_size == 48
    assert plan.flops == pytest.approx(spec.budget)


def test_the_lr_grid_is_log_spaced_over_the_family_range(tmp_path):
    path = tmp_path / "v1.toml"
    path.write_text(DATA_HEAD.replace('["transformer"]', '["transformer", "gatr"]') + SMALL_DATA + SHAPES.replace(
        "shapes = { transformer = { width = 16, depth = 1 } }", "shapes = { transformer = { width = 16, depth = 1 }, "
        "gatr = { mv_channels = 2, s_channels = 4, depth = 1 } }") + "[training]\nbatch_size = 16\n"
        "lr_ranges = { transformer = [1e-3, 4e-3], gatr = [2e-3, 8e-3] }\n")
    specs = {s.family_name: s for s in load_config(path).specs() if s.train_size == 64}
    grid = FixedShapeSpace().grid(specs["gatr"], 3)["lr"]
    assert grid == pytest.approx([2e-3, 4e-3, 8e-3])
    assert FixedShapeSpace().grid(specs["transformer"], 1)["lr"] == pytest.approx([2e-3])
    assert specs["gatr"].name == "data/gatr/64"                      # the older single `steps`: named without it


@pytest.mark.slow
def test_a_tiny_data_study_beside_a_compute_study_in_one_storage(tmp_path, ray_tmpdir):
    """Per-epoch curves, lr tuned per size, its own studies; the compute study in the storage is left alone,
    and running the data study again adds nothing."""
    from study.pipeline import run_study

    url = f"sqlite:///{tmp_path / 'both.db'}"
    compute = tiny_config(url, families=("transformer",), budgets=(1e9,), trials=2)
    run_study(compute, cache_dir=tmp_path / "cache")
    before = {(t.number, t.value, t.datetime_complete) for t in
              optuna.load_study(study_name="transformer/1e+09", storage=url).trials}

    config = tiny_data_config(url)
    summary = run_study(config, cache_dir=tmp_path / "cache")
    assert summary.short == ()
    names = {r.study for r in summary.rows}
    assert names == {"transformer/1e+09", "data/transformer/32", "data/transformer/128", "data/gatr/32",
                     "data/gatr/128"}
    for spec in config.specs():
        study = optuna.load_study(study_name=spec.name, storage=url)
        assert study.user_attrs["kind"] == "data" and study.user_attrs["train_size"] == spec.train_size
        trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        lo, hi = config.training.lr_range(spec.family_name)
        assert sorted(t.params["lr"] for t in trials) == pytest.approx([lo, hi])   # the 2-point lr grid
        for trial in trials:
            a = trial.user_attrs
            assert a["train_size"] == spec.train_size and a["steps"] == 40
            assert a["epochs"] == pytest.approx(40 * 16 / spec.train_size)
            total = 40 * 16 // spec.train_size
            assert max(trial.intermediate_values) == total and min(trial.intermediate_values) == 1
            assert all(math.isfinite(v) for v in trial.intermediate_values.values())
    after = {(t.number, t.value, t.datetime_complete) for t in
             optuna.load_study(study_name="transformer/1e+09", storage=url).trials}
    assert after == before
    assert "kind" not in optuna.load_study(study_name="transformer/1e+09", storage=url).user_attrs

    again = run_study(config, cache_dir=tmp_path / "cache")     # resume: every study has its trials
    assert sum(r.complete for r in again.rows) == sum(r.complete for r in summary.rows)


@pytest.mark.slow
def test_a_tiny_v2_data_study_stores_the_contract_and_resumes_without_a_new_trial(tmp_path, ray_tmpdir):
    """Lengths x sizes as 3-part study names, the lr grid with its best inside (or a stopped extension), 2 seeds at
    the best, every COMPLETE trial with the attributes the analysis reads; a second run adds nothing."""
    from search_spaces.lrgrid import LrGridSettings
    from study.pipeline import run_study

    url = f"sqlite:///{tmp_path / 'v2.db'}"
    config = replace(tiny_data_config(url, families=("transformer",), sizes=(32,)), sampler="lrgrid",
                     sampler_settings=LrGridSettings(points=5, extend=1, seeds=2), claims=(("no_translation", "x"),))
    config = replace(config, data_study=replace(config.data_study, steps=0, lengths=(8, 40)))
    validate(config)
    summary = run_study(config, cache_dir=tmp_path / "cache")
    assert summary.short == () and {r.study for r in summary.rows} == {"data/transformer/32/8", "data/transformer/32/40"}
    for steps in (8, 40):
        study = optuna.load_study(study_name=f"data/transformer/32/{steps}", storage=url)
        a = study.user_attrs
        assert (a["kind"], a["family"], a["train_size"], a["claims"]["no_translation"]) == ("data", "transformer", 32, "x")
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        assert len(complete) == len(study.trials)
        lrs: dict[float, list] = {}
        for trial in complete:
            t = trial.user_attrs
            assert {"steps", "lr", "seed", "val_loss", "test_loss", "train_size", "epochs"} <= set(t)
            assert t["steps"] == steps and t["train_size"] == 32 and t["epochs"] == pytest.approx(steps * 16 / 32)
            assert max(trial.intermediate_values) == steps * 16 // 32          # per epoch
            lrs.setdefault(round(t["lr"], 12), []).append(trial.value)
        assert len({trial.user_attrs["seed"] for trial in complete}) == len(complete)
        grid = np.geomspace(*config.training.lr_range("transformer"), 5)
        assert set(np.round(grid, 12)) <= set(lrs) and len(lrs) <= 5 + 1     # the grid, at most one extension
        means = {lr: sum(v) / len(v) for lr, v in lrs.items()}
        best = min(means, key=means.get)
        assert len(lrs[best]) == 2                                            # 2 seeds at the best
        assert min(lrs) < best < max(lrs) or len(lrs) == 6                    # inside, or the extension limit hit
    again = run_study(config, cache_dir=tmp_path / "cache")
    assert sum(len(optuna.load_study(study_name=r.study, storage=url).trials) for r in again.rows) == sum(
        r.complete for r in summary.rows)
