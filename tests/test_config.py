"""Study configuration: the embedded default, TOML parsing, overrides and one-place validation."""

from __future__ import annotations

import pytest

import dataclasses
import math
import tomllib

from study.config import (DEFAULT_STORAGE, DEFAULT_TOML, DataConfig, ResourceConfig, TrainingConfig, load_config,
                          settings, study_name, with_overrides)
from search_spaces import space_for
from search_spaces.budget import proposal
from study.config import resolve, study_spec
from study.errors import ConfigError
from study.tune import plan_defaults


def test_default_study_is_three_families_by_at_least_three_budgets_on_an_isoflop_grid():
    config = load_config()
    assert set(config.families) == {"transformer", "transformer-aug", "gatr"}
    assert len(config.budgets) >= 3 and config.trials >= 3 and config.sampler == "grid"
    assert max(config.budgets) / min(config.budgets) >= 10
    assert config.storage == DEFAULT_STORAGE == "sqlite:///equiscale.db"
    assert len(config.studies()) == len(config.families) * len(config.budgets)


def test_study_names_follow_the_contract():
    assert study_name("gatr", 1e12) == "gatr/1e+12"
    assert study_name("transformer-aug", 3e10) == "transformer-aug/3e+10"


def test_toml_file_overrides_defaults(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('families = ["transformer"]\nbudgets = [1e10, 2e10]\ntrials = 3\n'
                    '[training]\nbatch_size = 32\nmax_steps = 400\n[resources]\ncpus_per_trial = 0.5\n')
    config = load_config(path)
    assert config.families == ("transformer",)
    assert config.budgets == (1e10, 2e10)
    assert config.training.batch_size == 32 and config.training.max_steps == 400
    assert config.training.min_steps == 300  # untouched default
    assert config.resources.cpus_per_trial == 0.5


def test_command_line_overrides_are_validated():
    config = with_overrides(load_config(), families=["gatr"], budgets=[3e11], trials=2, gpus_per_trial=0.25)
    assert config.families == ("gatr",) and config.budgets == (3e11,) and config.trials == 2
    assert config.resources.gpus_per_trial == 0.25
    # per-budget batch sizes: a budget from the command line takes the nearest (log scale) budget's batch
    file = load_config()
    for budget in (3e11, 1.5e12, 5e13):
        nearest = min(file.budgets, key=lambda b: abs(math.log10(b) - math.log10(budget)))
        over = with_overrides(file, budgets=[budget, 2e11])
        assert over.batch_size_for(budget) == file.batch_size_for(nearest)
        assert over.batch_size_for(2e11) == file.batch_size_for(2e11)
    with pytest.raises(ConfigError, match="budget"):
        with_overrides(file, budgets=[-1.0])
    with pytest.raises(ConfigError, match="nope"):
        with_overrides(load_config(), families=["nope"])


@pytest.mark.parametrize("text, match", [
    ("families = [", "malformed TOML"),
    ('families = ["transformer"]\nbudgets = [1e10]\nbogus = 1\n', "bogus"),
    ('families = ["transformer"]\nbudgets = [1e10]\ntrials = "six"\n', "trials"),
    ('families = ["transformer"]\nbudgets = [0.0]\n', "budget"),
    ('families = ["transformer"]\nbudgets = [-1e10]\n', "budget"),
    ('families = ["transformer"]\nbudgets = [1e3]\n', "1e\\+03"),
    ('families = ["mlp"]\nbudgets = [1e10]\n', "mlp"),
    ('budgets = [1e10]\n', "families"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\nmin_steps = 10\n', "min_steps"),
    ('families = ["transformer"]\nbudgets = [1e10, 1.1e10]\n', "collide"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[resources]\ncpus_per_trial = 0\n', "cpus"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[data]\nscenes = 0\n', "scenes"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\nweight_decay = nan\n', "weight_decay"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\ngrad_clip = nan\n', "grad_clip"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\ngrad_clip = inf\n', "grad_clip"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\nlr_max = nan\n', "lr_min/lr_max"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[resources]\ncpus_per_trial = nan\n', "cpus"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[resources]\ngpus_per_trial = inf\n', "gpus"),
    ('families = ["transformer"]\nbudgets = [1e10]\nsampler = "cmaes"\n', "unknown sampler 'cmaes'"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\nlr_ranges = { mlp = [1e-3, 1e-2] }\n', "mlp"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\nlr_ranges = { transformer = [1e-2] }\n',
     "lr_min, lr_max"),
    ('families = ["gatr"]\nbudgets = [1e10]\nsampler = "grid"\ntrials = 500\n', "fewer than 500 trials"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\nstep_ranges = { mlp = [300, 3000] }\n', "mlp"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\nstep_ranges = { transformer = [3000] }\n',
     "min_steps, max_steps"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\nstep_ranges = { transformer = [50, 3000] }\n',
     "step_ranges.transformer"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\nstep_ranges = { transformer = [3000, 2000] }\n',
     "step_ranges.transformer"),
    ('families = ["transformer"]\nbudgets = [1e10]\n[training]\nstep_ranges = { transformer = [300.5, 3000] }\n',
     "must be int"),
    ('families = ["gatr"]\nbudgets = [3e10]\nsampler = "grid"\ntrials = 4\n[training]\n'
     'step_ranges = { gatr = [3000, 3300] }\n', "gatr"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[data]\nscenes = 100000000000\n', "memory"),
    ('families = ["gatr"]\nbudgets = [1e10, 1e11]\n[training]\nbudget_step_ranges = { gatr = [[300, 3000]] }\n',
     "one \\[min_steps, max_steps\\] per budget"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\nbudget_step_ranges = { gatr = [300, 3000] }\n',
     "budget_step_ranges.gatr"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\nbudget_step_ranges = { gatr = [[50, 3000]] }\n',
     "budget_step_ranges.gatr must satisfy"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\nbudget_step_ranges = { mlp = [[300, 3000]] }\n', "mlp"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\nbudget_step_ranges = [[300, 3000]]\n',
     "budget_step_ranges must be a table"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\naligned_budgets = [1e10]\n', "unknown key"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\nlr_batch_scaling = "linear"\n', "lr_batch_scaling"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\nlr_batch_scaling = 2\n', "lr_batch_scaling"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\nlr_batch_scalings = { gatr = "linear" }\n',
     "lr_batch_scalings.gatr"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\nlr_batch_scalings = { gatr = 1 }\n', "must be str"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\nlr_batch_scalings = { mlp = "none" }\n', "mlp"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\nlr_batch_scalings = "none"\n', "lr_batch_scalings"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\ncheckpoint_seconds = nan\n', "checkpoint_seconds"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[training]\ncheckpoint_seconds = -1\n', "checkpoint_seconds"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[resources]\ncompile = 1\n', "compile must be true or false"),
    ('families = ["gatr"]\nbudgets = [1e10]\n[resources]\ncompile = true\nstack = 4\n',
     "does not combine with resources.stack = 4"),
])
def test_bad_config_is_one_config_error_naming_the_problem(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_study_file_with_the_defaults_own_keys_trains_exactly_like_the_embedded_default(tmp_path):
    """One source of defaults: the embedded default sets its top-level keys and a few [training] keys only;
    every other setting is a dataclass default, so a file giving the same keys trains exactly alike."""
    raw = tomllib.loads(DEFAULT_TOML)
    assert set(raw) - {"training"} == {"families", "budgets", "trials", "seed", "sampler"}
    own = {"batch_size", "batch_sizes", "lr_batch_scaling", "lr_ranges", "step_ranges"}
    assert set(raw["training"]) == own

    def toml(value):
        if isinstance(value, dict):
            return "{ " + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + " }"
        if isinstance(value, list):
            return "[" + ", ".join(toml(v) for v in value) + "]"
        return f'"{value}"' if isinstance(value, str) else repr(value)

    path = tmp_path / "bare.toml"
    path.write_text("".join(f"{k} = {toml(v)}\n" for k, v in raw.items() if k != "training")
                    + "[training]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in raw["training"].items()))
    bare, default = load_config(path), load_config()
    assert bare == default
    assert default.data == DataConfig() and default.resources == ResourceConfig()
    assert dataclasses.replace(default.training, **{k: getattr(TrainingConfig(), k) for k in own}) == TrainingConfig()
    assert default.data.scenes == 65536 and default.training.val_samples == 256
    # every budget has its batch, and the lr ranges (given at batch 256) follow it by the square root
    assert default.training.batch_sizes == (64, 128, 256) and len(default.budgets) == 3
    lo, hi = default.training.lr_range("gatr")
    assert default.training.lr_range("gatr", batch=64) == (pytest.approx(lo / 2), pytest.approx(hi / 2))


def test_settings_cover_every_training_knob_that_shapes_a_trial():
    config = load_config()
    knobs = {f.name for f in dataclasses.fields(config.training)} - {"batch_size", "batch_sizes", "checkpoint_seconds",
                                                                    "aligned_budgets",   # (the file's budgets)
                                                                    "time_cap_seconds"}  # ends runs, changes none
    on = dataclasses.replace(config, training=dataclasses.replace(config.training, lr_batch_scaling="sqrt",
                                                                  lr_batch_scalings=(("gatr", "none"),),
                                                                  budget_step_ranges=(("gatr", ((300, 900),) * 3),)))
    assert knobs <= set(settings(on)), "a training setting missing from the resume check"
    # the batch size is checked per study (each budget may have its own): the study attribute batch_size
    assert {"seed", "bodies"} <= set(settings(config))


def test_per_family_learning_rates_and_the_grid_sampler_parse(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('families = ["transformer", "gatr"]\nbudgets = [1e11]\nsampler = "grid"\n'
                    '[training]\nmax_steps = 20000\nlr_ranges = { gatr = [2e-3, 1e-2] }\n')
    config = load_config(path)
    assert config.sampler == "grid"
    assert config.training.lr_range("gatr") == (2e-3, 1e-2)
    assert config.training.lr_range("transformer") == (config.training.lr_min, config.training.lr_max)


def test_per_family_step_ranges_parse_and_enter_the_resume_settings_only_when_given(tmp_path):
    path = tmp_path / "steps.toml"
    path.write_text('families = ["transformer", "gatr"]\nbudgets = [1e11]\n[training]\nmax_steps = 20000\n'
                    'step_ranges = { transformer = [3000, 12000] }\n')
    config = load_config(path)
    assert config.training.step_range("transformer") == (3000, 12000)
    assert config.training.step_range("gatr") == (config.training.min_steps, 20000)
    assert settings(config)["step_ranges"] == [["transformer", 3000, 12000]]
    # a study stored before step_ranges existed resumes: without them its settings have no such key
    plain = dataclasses.replace(config, training=dataclasses.replace(config.training, step_ranges=()))
    assert "step_ranges" not in settings(plain)


def test_per_budget_step_ranges_set_each_budgets_grid_and_enter_the_settings_only_when_given(tmp_path):
    """`budget_step_ranges = { gatr = [[lo, hi], ...] }`: GATr's grid at each budget keeps its steps inside that
    budget's range (steps = budget // step FLOPs, computed here); other families keep their step_ranges; a
    budget from the command line takes the nearest budget's range."""
    path = tmp_path / "per-budget.toml"
    path.write_text('families = ["gatr", "transformer"]\nbudgets = [1e11, 1e12]\nsampler = "grid"\ntrials = 4\n'
                    '[training]\nbatch_size = 64\nmax_steps = 30000\nstep_ranges = { gatr = [300, 3000] }\n'
                    'budget_step_ranges = { gatr = [[300, 3000], [3000, 30000]] }\n')
    config = load_config(path)
    assert [config.step_range_for("gatr", b) for b in config.budgets] == [(300, 3000), (3000, 30000)]
    assert config.step_range_for("transformer", 1e12) == (config.training.min_steps, 30000)
    for budget, (lo, hi) in zip(config.budgets, [(300, 3000), (3000, 30000)]):
        grid = space_for("gatr").grid(study_spec(config, "gatr", budget), config.trials)
        steps = [int(budget // (3 * 64 * f)) for f in grid["fwd_flops"]]
        assert all(lo - 1 <= s <= hi for s in steps), (budget, steps)      # (floor of a float quotient)
    assert settings(config)["budget_step_ranges"] == [["gatr", [[300, 3000], [3000, 30000]]]]
    plain = dataclasses.replace(config, training=dataclasses.replace(config.training, budget_step_ranges=()))
    assert "budget_step_ranges" not in settings(plain)
    over = with_overrides(config, budgets=[2e12, 9e10])
    assert [over.step_range_for("gatr", b) for b in over.budgets] == [(3000, 30000), (300, 3000)]
    assert settings(over) == settings(config)      # so a run of some budgets resumes the file's studies


def test_lr_batch_scaling_parses_and_enters_the_resume_settings_only_when_on(tmp_path):
    path = tmp_path / "scaled.toml"
    path.write_text('families = ["gatr"]\nbudgets = [1e11, 1e12]\n[training]\nbatch_size = 64\n'
                    'batch_sizes = [64, 1024]\nlr_batch_scaling = "sqrt"\nlr_ranges = { gatr = [1e-3, 4e-3] }\n')
    config = load_config(path)
    assert config.training.lr_range("gatr", batch=1024) == (pytest.approx(4e-3), pytest.approx(1.6e-2))
    assert config.training.lr_range("gatr", batch=64) == config.training.lr_range("gatr") == (1e-3, 4e-3)
    assert settings(config)["lr_batch_scaling"] == "sqrt"
    # studies stored before the option existed resume: off, their settings have no such key
    off = dataclasses.replace(config, training=dataclasses.replace(config.training, lr_batch_scaling="none"))
    assert "lr_batch_scaling" not in settings(off)


def test_a_familys_own_lr_batch_scaling_overrides_the_studys_and_enters_the_settings_only_when_given(tmp_path):
    """`lr_batch_scalings = { gatr = "none" }`: GATr keeps its range at every batch, the transformer's follows
    the batch by the square-root rule; studies stored without the key resume (it is absent from settings)."""
    path = tmp_path / "mixed.toml"
    path.write_text('families = ["gatr", "transformer"]\nbudgets = [1e11, 1e12]\n[training]\nbatch_size = 256\n'
                    'batch_sizes = [64, 256]\nlr_batch_scaling = "sqrt"\nlr_batch_scalings = { gatr = "none" }\n'
                    'lr_ranges = { gatr = [1e-2, 4e-2], transformer = [2e-3, 8e-3] }\n')
    config = load_config(path)
    assert config.training.lr_range("gatr", batch=64) == (1e-2, 4e-2)
    assert config.training.lr_range("transformer", batch=64) == (pytest.approx(1e-3), pytest.approx(4e-3))
    assert settings(config)["lr_batch_scalings"] == [["gatr", "none"]]
    plain = dataclasses.replace(config, training=dataclasses.replace(config.training, lr_batch_scalings=()))
    assert "lr_batch_scalings" not in settings(plain)
    assert plain.training.lr_range("gatr", batch=64) == (pytest.approx(5e-3), pytest.approx(2e-2))


def test_one_batch_size_per_budget(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text('families = ["transformer"]\nbudgets = [1e10, 1e11]\n[training]\nbatch_sizes = [32, 128]\n'
                    'max_steps = 20000\n')
    config = load_config(path)
    assert (config.batch_size_for(1e10), config.batch_size_for(1e11)) == (32, 128)
    path.write_text('families = ["transformer"]\nbudgets = [1e10, 1e11]\n[training]\nbatch_sizes = [32]\n')
    with pytest.raises(ConfigError, match="one batch size per budget"):
        load_config(path)


def test_claims_parse_the_no_translation_variant(tmp_path):
    from study.config import claims
    path = tmp_path / "c.toml"
    path.write_text('families = ["gatr"]\nbudgets = [1e10]\n[claims]\nno_translation = "transformer-aug-notrans"\n')
    assert claims(load_config(path))["no_translation"] == "transformer-aug-notrans"
    path.write_text('families = ["gatr"]\nbudgets = [1e10]\n[claims]\nno_translation = 3\n')
    with pytest.raises(ConfigError, match="no_translation"):
        load_config(path)


def test_resources_compile_reaches_every_trials_plan_and_is_off_by_default(tmp_path):
    path = tmp_path / "c.toml"
    for line, expected in (("", False), ("[resources]\ncompile = true\n", True)):
        path.write_text('families = ["transformer", "gatr"]\nbudgets = [1e10]\n' + line)
        run = resolve(load_config(path))
        for spec in run.studies:
            shape = {"width": 8, "depth": 1} if spec.family_name == "transformer" else \
                {"mv_channels": 2, "s_channels": 4, "depth": 1}
            plan = plan_defaults(spec, run.resources).plan(proposal(spec, shape, lr=1e-3, steps=100), seed=0)
            assert plan.compile is expected
