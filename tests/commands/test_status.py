"""`equiscale status`: a row per study with COMPLETE/target trials, best loss and the best trial's shape."""

from __future__ import annotations

import optuna

from study.cli import main


def _storage(path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{path}"
    for name, family, budget, losses in (("gatr/1e+10", "gatr", 1e10, [0.5, 0.25, None]),
                                         ("transformer/1e+10", "transformer", 1e10, [])):
        study = optuna.create_study(storage=url, study_name=name)
        for key, value in {"family": family, "budget": budget, "target_trials": 6}.items():
            study.set_user_attr(key, value)
        for i, loss in enumerate(losses):
            trial = study.ask()
            trial.set_user_attr("shape", {"mv_channels": 4 + i, "s_channels": 8, "depth": 2})
            trial.set_user_attr("params", 1000 + i)
            trial.set_user_attr("epochs", 2.5 + i)
            if loss is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, loss)
    return url


def test_status_prints_one_row_per_study_with_the_best_trial(tmp_path, capsys):
    url = _storage(tmp_path / "s.db")
    assert main(["status", "--storage", url]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["study", "trials", "failed"]
    gatr = next(line for line in lines if line.startswith("gatr/1e+10")).split()
    assert lines[0].split()[7] == "epochs"  # after "best val loss"
    assert gatr[1:4] == ["2/6", "1", "0"] and gatr[4] == "0.25" and gatr[5] == "3.5"  # the best trial's epochs
    assert "mv_channels=5" in " ".join(gatr) and "(N=1,001)" in " ".join(gatr)
    empty = next(line for line in lines if line.startswith("transformer/1e+10")).split()
    assert empty[1:5] == ["0/6", "0", "0", "-"]
