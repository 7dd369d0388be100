"""`--compute` on a synthetic storage whose laws differ by axis (checked against fits made here from the stored
attributes), the report's test losses of validation-selected runs, and claims that name the families compared."""

import json
import re
from pathlib import Path

import numpy as np
import optuna
import pytest

from study.cli import main
from study.models import gatr
from tests.analysis.synthetic import Truth, make_storage
from tests.analysis.test_report import _table_after

BUDGETS = [1e12, 1e13, 1e14, 1e15]
FAST = ["--bootstrap", "20", "--refine", "20"]
SAMPLE = {"bodies": 4, "markers": 4, "props": 8}


def _attrs(family, n, d, flops):
    """Seconds ∝ C² (so the seconds law's exponent is half the executed one), nominal = 3·C, a GATr shape
    for gatr (its idealised count), test loss off the validation loss by a per-trial factor."""
    rng = np.random.default_rng(int(n) % 9973)
    out = {"wall_seconds": 10.0 * (flops / 1e12) ** 2, "nominal_flops": 3.0 * flops}
    if family == "gatr":
        out["shape"] = {"mv_channels": int(8 * (1 + int(n) % 3)), "s_channels": 16, "depth": 2}
    out["test_loss_factor"] = float(rng.uniform(0.9, 1.1))
    return out


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('axes') / 'a.db'}"
    make_storage(url, {"gatr": Truth(K=7.0, A=5.0, B=40.0, E=0.02), "transformer": Truth(A=5.0, B=40.0, E=0.03)},
                 BUDGETS, per_budget=6, trial_attrs=_attrs)
    return url


def _best(url: str, family: str) -> list[dict]:
    """The stored attributes of each budget's best (validation) full-budget trial."""
    out = []
    for c in BUDGETS:
        trials = [t for t in optuna.load_study(study_name=f"{family}/{c:.0e}", storage=url).get_trials()
                  if t.state == optuna.trial.TrialState.COMPLETE and abs(t.user_attrs["flops_used"] / c - 1) <= 0.01]
        out.append(min(trials, key=lambda t: t.user_attrs["val_loss"]).user_attrs)
    return out


def _exponent(x, loss) -> float:
    return -np.polyfit(np.log(x), np.log(loss), 1)[0]


def _fit(capsys, url, axis) -> dict:
    assert main(["fit", "--storage", url, "--json", "--compute", axis, "--bootstrap", "0", "--refine", "20"]) == 0, \
        capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_each_axis_fits_the_law_of_its_own_compute(storage, capsys):
    fits = {axis: _fit(capsys, storage, axis) for axis in ("executed", "nominal", "seconds", "idealised")}
    for family in ("gatr", "transformer"):
        best = _best(storage, family)
        loss = [a["val_loss"] for a in best]
        expected = {"executed": _exponent(BUDGETS, loss),
                    "nominal": _exponent([a["nominal_flops"] for a in best], loss),
                    "seconds": _exponent([a["wall_seconds"] for a in best], loss)}
        if family == "gatr":   # samples × idealised FLOPs per sample of the stored shape
            expected["idealised"] = _exponent([a["samples"] * gatr.idealised_training_flops(**SAMPLE, **a["shape"])
                                               for a in best], loss)
        else:                  # no idealised count: the executed one
            expected["idealised"] = expected["executed"]
        for axis, value in expected.items():
            got = fits[axis]["families"][family]["approaches"]["power"]["exponent"]["value"]
            assert got == pytest.approx(value, rel=1e-6), (family, axis)
            assert fits[axis]["compute"] == axis
        assert expected["seconds"] == pytest.approx(expected["executed"] / 2, rel=1e-6)   # the laws differ by axis
    assert fits["idealised"]["families"]["gatr"]["approaches"]["power"]["exponent"]["value"] != pytest.approx(
        fits["executed"]["families"]["gatr"]["approaches"]["power"]["exponent"]["value"], rel=1e-3)
    # IsoFLOP exponents on seconds: N_opt ∝ C^a with seconds ∝ C² gives a/2 (same runs, same minima)
    for family in ("gatr", "transformer"):
        a = {ax: fits[ax]["families"][family]["approaches"]["isoflop"]["a"]["value"] for ax in ("executed", "seconds")}
        assert a["seconds"] == pytest.approx(a["executed"] / 2, rel=1e-6)


def test_report_gives_every_axis_and_test_losses_of_validation_selected_runs(storage, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", "--storage", storage, "--out", str(out), "--bootstrap", "20"]) == 0, capsys.readouterr().err
    md = (out / "report.md").read_text()
    assert "## Compute axes" in md and "| executed | nominal | idealised | seconds |" in md
    claim2 = next(line for line in md.splitlines() if line.startswith("- **Claim 2**"))
    assert all(f"{axis}: " in claim2 for axis in ("executed", "nominal", "idealised", "seconds"))
    rows = _table_after(md, "Test loss [MSE, m²] of the same runs")
    for k, family in enumerate(("gatr", "transformer")):
        for row, attrs in zip(rows, _best(storage, family)):
            assert row[1 + k] == f"{attrs['test_loss']:.4g}"       # the validation-selected run's test loss
    assert "gatr ÷ transformer (test)" in md


def test_compute_axis_needs_a_storage(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    csv.write_text("N,C,L\n1e6,6e12,2.0\n2e6,6e12,1.9\n3e6,6e12,1.95\n")
    assert main(["fit", "--from-csv", str(csv), "--n-column", "N", "--c-column", "C", "--loss-column", "L",
                 "--compute", "seconds"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--compute seconds" in err


# --- the families the claims compare ----------------------------------------------------------------------

USER = {"deepsets": Truth(A=5.0, B=40.0, E=0.02, K=7.0), "mlp": Truth(A=5.0, B=40.0, E=0.03)}


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    root = tmp_path_factory.mktemp("users")
    plain, stored, bad = (f"sqlite:///{root / n}.db" for n in ("plain", "stored", "bad"))
    make_storage(plain, USER, BUDGETS, per_budget=5)
    make_storage(stored, USER, BUDGETS, per_budget=5,
                 claims={"equivariant": "deepsets", "baselines": ["mlp"], "augmented": None})
    make_storage(bad, USER, BUDGETS[:3], per_budget=3, claims={"baselines": "mlp"})
    return {"plain": plain, "stored": stored, "bad": bad}


def _claims(md: str) -> str:
    return md.split("## Claims", 1)[1].split("## Loss vs compute", 1)[0]


def test_other_families_named_on_the_command_line(users, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", "--storage", users["plain"], "--out", str(out), "--bootstrap", "20",
                 "--equivariant", "deepsets", "--baselines", "mlp"]) == 0, capsys.readouterr().err
    md = (out / "report.md").read_text()
    assert "claims compare: equivariant deepsets; baselines mlp" in md and "from the command line" in md
    assert "deepsets better at every budget" in _claims(md) and "deepsets ÷ mlp best loss" in _claims(md)
    assert "deepsets ÷ mlp (val)" in md
    assert "gatr" not in md and "transformer" not in md


def test_other_families_stored_with_the_studies(users, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", "--storage", users["stored"], "--out", str(out), "--bootstrap", "20"]) == 0
    md = (out / "report.md").read_text()
    assert "from the studies' stored `claims`" in md and "deepsets ÷ mlp best loss" in _claims(md)
    assert "gatr" not in md


def test_compute_and_data_studies_that_store_different_families_each_keep_their_own(users, tmp_path, capsys):
    """Claims 2 and 3 compare the compute studies' stored families, claim 1 the data studies' (the committed
    compute study trains 2-head networks, its data study fixed shapes under the flagship's names): one report
    reads both, each claim naming its own families."""
    from tests.analysis.synthetic_data import LengthTruth, make_length_storage

    data = f"sqlite:///{tmp_path / 'data.db'}"
    truth = LengthTruth(1.0, 0.3)
    make_length_storage(data, {"gatr": truth, "transformer": LengthTruth(2.0, 0.3), "transformer-aug": truth},
                        {256: (1000,), 1024: (1000,)}, seeds=2, seed=3)      # stores the flagship's claims
    out = tmp_path / "r"
    assert main(["report", "--storage", users["stored"], "--storage", data, "--out", str(out),
                 "--bootstrap", "20"]) == 0, capsys.readouterr().err
    md = (out / "report.md").read_text()
    assert "claims 2 and 3 compare: equivariant deepsets; baselines mlp" in md
    assert "claim 1 compares: equivariant gatr; baselines transformer, transformer-aug" in md
    claims = {k: next(line for line in _claims(md).splitlines() if line.startswith(f"- **Claim {k}**"))
              for k in (1, 2, 3)}
    assert "deepsets better at every budget" in claims[2] and "gatr" not in claims[2] + claims[3]
    assert "equivariance (gatr) improves data efficiency over transformer" in claims[1]
    assert "deepsets" not in claims[1] and "Claim 1 names: equivariant gatr" in _claims(md)


def test_without_names_the_claims_say_what_is_missing(users, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", "--storage", users["plain"], "--out", str(out), "--bootstrap", "20"]) == 0
    claims = _claims((out / "report.md").read_text())
    assert re.search(r"\*\*Claim 3\*\* .*: \*\*cannot be judged\*\*\. needs compute studies of both gatr and "
                     r"transformer .*--equivariant", claims)


def test_bad_claims_input_is_one_line_exit_2(users, tmp_path, capsys):
    for argv, needle in ((["--storage", users["bad"]], "study attribute 'claims' must be a table"),
                         (["--storage", users["plain"], "--equivariant", "mlp", "--baselines", "mlp"], "also among"),
                         (["--storage", users["plain"], "--baselines", "mlp", "--augmented", "x"], "not among")):
        assert main(["report", *argv, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err
        assert not (tmp_path / "x").exists()


def test_the_analysis_spells_no_family_and_no_stored_attribute_name():
    root = Path(__file__).resolve().parents[2] / "analysis"
    stored = ("batch_size", "flops_used", "train_size", "wall_seconds", "nominal_flops", "flops_per_sample",
              "dataset_key", "target_trials")
    for path in root.glob("*.py"):
        text = path.read_text()
        for name in ("gatr", "transformer", *stored):
            assert not re.search(rf"[\"']{re.escape(name)}[\"']", text), (path.name, name)


def test_the_command_line_keeps_the_stored_no_translation_variant_of_the_same_augmented_family():
    from argparse import Namespace

    from study import schema
    from study.commands.report import claims_from

    stored = [schema.ClaimFamilies("gatr", ("transformer", "transformer-aug"), "transformer-aug",
                                   no_translation="transformer-aug-notrans")]
    same = Namespace(equivariant="gatr", baselines="transformer,transformer-aug", augmented=None)
    assert claims_from(same, stored, "s")[0].no_translation == "transformer-aug-notrans"
    other = Namespace(equivariant="gatr", baselines="transformer,mlp-aug", augmented="mlp-aug")
    assert claims_from(other, stored, "s")[0].no_translation is None     # a variant of another family: dropped


def test_a_storage_without_the_no_translation_variant_agrees_with_one_that_names_it():
    """The committed compute storage names no no-translation family (it trains none), the data storage does: one
    report reads both and keeps the variant; two different variants, or other families, still disagree."""
    from study import schema
    from study.errors import EquiscaleError
    from analysis.trials import claims_of

    plain = schema.ClaimFamilies("gatr", ("transformer", "transformer-aug"), "transformer-aug")
    named = schema.ClaimFamilies("gatr", ("transformer", "transformer-aug"), "transformer-aug",
                                 no_translation="transformer-aug-notrans")
    assert claims_of([plain, named], "s") == named and claims_of([named, plain], "s") == named
    assert claims_of([plain], "s") == plain and claims_of([], "s") == schema.ClaimFamilies()
    other_variant = schema.ClaimFamilies("gatr", ("transformer", "transformer-aug"), "transformer-aug",
                                         no_translation="transformer-aug-norefl")
    other_families = schema.ClaimFamilies("gatr", ("transformer", "mlp-aug"), "mlp-aug")
    for bad in ([named, other_variant], [plain, other_families], [named, other_families]):
        with pytest.raises(EquiscaleError, match="name different families"):
            claims_of(bad, "s")
