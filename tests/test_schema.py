"""The stored names are a public format: written and read back exactly as the README documents them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import optuna

from study import schema
from study.records import TrainResult, TrialPlan

ROOT = Path(__file__).resolve().parents[1]
README_TRIAL_ATTRS = {"params", "samples", "steps", "flops_used", "val_loss", "test_loss", "wall_seconds",
                      "equivariance_error", "node", "shape", "lr"}

PLAN = TrialPlan(family="gatr", budget=1e12, shape={"mv_channels": 4, "s_channels": 8, "depth": 2}, lr=1e-3,
                 steps=500, batch_size=64, step_flops=2e9, forward_flops=1.0e7, params=1234, seed=7)
RESULT = TrainResult(val_loss=0.05, test_loss=0.06, train_loss=0.04, equivariance_error=1e-7, params=1234,
                     steps=500, samples=32000, epochs=4.0, train_seconds=9.0, wall_seconds=10.0, node="n1")


def test_trial_attributes_carry_the_documented_names_and_independent_values():
    attrs = schema.trial_attrs(PLAN, RESULT)
    assert README_TRIAL_ATTRS <= set(attrs)
    assert attrs["flops_used"] == 2e9 * 500 and attrs["samples"] == 500 * 64
    assert attrs["nominal_flops"] == 3 * 1.0e7 * 32000 and attrs["epochs"] == 4.0
    assert attrs["shape"] == PLAN.shape and attrs["lr"] == 1e-3 and attrs["node"] == "n1"
    assert "compiled" not in attrs                                  # an eager trial: absent, as in older storages
    assert schema.trial_attrs(dataclasses.replace(PLAN, compile=True), RESULT)["compiled"] is True


def test_written_attributes_read_back_through_optuna(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=url, study_name=schema.study_name("gatr", 1e12))
    schema.write_study_attrs(study, schema.StudyAttrs("gatr", 1e12, 64, "k", 6, {"seed": 0}))
    trial = study.ask()
    schema.write_trial_attrs(trial, schema.trial_attrs(PLAN, RESULT))
    study.tell(trial, 0.05)
    loaded = optuna.load_study(study_name="gatr/1e+12", storage=url)
    assert schema.read_study_attrs(loaded.user_attrs) == schema.StudyAttrs("gatr", 1e12, 64, "k", 6, {"seed": 0})
    record = schema.read_trial(loaded.trials[0])
    assert (record.params, record.samples, record.steps, record.flops_used) == (1234, 32000, 500, 1e12)
    assert record.loss("val_loss") == 0.05 and record.loss("test_loss") == 0.06 and record.epochs == 4.0


def test_the_readme_documents_every_trial_attribute_it_promises():
    readme = (ROOT / "README.md").read_text()
    for name in README_TRIAL_ATTRS:
        assert f"`{name}`" in readme


def test_stored_names_are_spelled_only_in_the_schema_module():
    """No other module of the packages writes or reads a user attribute by a string key."""
    pattern = re.compile(r"""(set_user_attr|user_attrs\.get|user_attrs\[)\(?\s*["']""")
    offenders = [str(p.relative_to(ROOT)) for package in ("study", "analysis", "search_spaces")
                 for p in (ROOT / package).rglob("*.py")
                 if p.name != "schema.py" and pattern.search(p.read_text())]
    assert offenders == []


def test_claims_name_the_no_translation_variant_only_when_given_and_read_back(tmp_path):
    old = {"equivariant": "gatr", "baselines": ["transformer", "transformer-aug"], "augmented": "transformer-aug"}
    assert schema.ClaimFamilies().as_attr() == old                     # older storages: byte-for-byte the same
    assert schema.read_claims({"claims": old}).no_translation is None
    named = schema.ClaimFamilies(no_translation="transformer-aug-notrans")
    assert named.as_attr() == {**old, "no_translation": "transformer-aug-notrans"}
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'c.db'}", study_name="s")
    study.set_user_attr("claims", named.as_attr())
    assert schema.read_claims(optuna.load_study(study_name="s", storage=study._storage).user_attrs) == named


def test_data_study_names_carry_the_training_length_and_the_old_name_stays():
    assert schema.data_study_name("gatr", 4096, 5000) == "data/gatr/4096/5000"
    assert schema.data_study_name("gatr", 4096) == "data/gatr/4096"
