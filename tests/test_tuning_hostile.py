"""A hostile probe of tuning (issue 32, items 3 and 6): a ``selected.json`` edited by hand or copied from another
model's folder is refused where it is read — by the tuned final run (finebench.train.with_selection) and by the
tables (finebench.tuning.write_tables) — naming the file and the fix; and a lowered budget leaves no trial run
current in MLflow that no table holds. Each selection here is the select step's own output from the seeded draws."""

import copy
import json
import shutil

import pytest
import yaml

from finebench import config, tuning
from finebench.errors import FinebenchError
from finebench.train import with_selection

TASK = "typefaces"
# a cnn and an rnn: their families' default spaces coincide, so their tuning identities are the same
MODELS = ("resnet18", "crnn")
FIX = r"delete it and rerun the workflow: Snakemake's select_trials step writes it again"


@pytest.fixture
def cfg(repo):
    embedded = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    embedded["tuning"] = {"budget": 4}
    return config.with_defaults(embedded)


def trials_of(cfg, task, model, scores=(0.5, 0.7, 0.6, None)):
    return [{"task": task, "model": model, "family": tuning.family_of(cfg, model), "trial": k, "val_score": score,
             "val_metric": "val_accuracy", "tuned_values": values, "train_seconds": 1.0, "mlflow_run_id": f"r{k}",
             **({"status": "DIVERGED"} if score is None else {})}
            for k, (values, score) in enumerate(zip(tuning.draws(cfg, task, model), scores))]


def selection(cfg, root, task, model) -> tuple:
    """The select step's selected.json in the workflow's layout, and the final seed-0 run's spec."""
    path = root / "tune" / task / model / "selected.json"
    tuning.select(trials_of(cfg, task, model), tuning.identity(cfg, task, model), path)
    return path, config.resolve_spec(cfg, task, model, 0)


def edit(path, **changes):
    s = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "values":
            s["values"] = value
        else:
            s["values"][key] = value
    path.write_text(json.dumps(s))


@pytest.fixture
def selections(cfg, tmp_path):
    assert tuning.identity(cfg, TASK, MODELS[0]) == tuning.identity(cfg, TASK, MODELS[1])
    return {m: selection(cfg, tmp_path / "results", TASK, m) for m in MODELS}


# ---------------------------------------------------------------------------------------------------------------
# The select step's own output passes its checks


def test_the_select_steps_own_selection_is_read_back_unchanged(cfg, selections, tmp_path):
    for model, (path, spec) in selections.items():
        out = with_selection(spec, path)
        chosen = tuning.draws(cfg, TASK, model)[1]  # trial 1 has the best score
        assert out["tuning"]["trial"] == 1 and out["tuning"]["values"] == chosen
        assert out["training"]["lr"] == chosen["lr"]
    tables = tuning.write_tables([p for p, _ in selections.values()], tmp_path, None)
    assert set(tables["trials"]["model"]) == set(MODELS)


def test_every_distribution_round_trips_even_a_draw_rounded_past_a_bound(cfg, tmp_path):
    cfg = copy.deepcopy(cfg)
    cfg["tuning"]["sampler"] = "sobol"
    cfg["models"]["crnn"]["tuning"] = {"budget": 8, "space": {
        "hidden": {"int": [32, 64]}, "cell": {"choice": ["gru", "lstm"]}, "lr": {"loguniform": [1e-4, 2.3456e-3]},
        "warmup_epochs": {"uniform": [0.0, 1.0]}}}
    task, model = TASK, "crnn"
    path = tmp_path / "results" / "tune" / task / model / "selected.json"
    scores = [0.1 * k for k in range(8)]
    tuning.select(trials_of(cfg, task, model, scores), tuning.identity(cfg, task, model), path)
    out = with_selection(config.resolve_spec(cfg, task, model, 0), path)
    assert isinstance(out["model_kwargs"]["hidden"], int) and out["model_kwargs"]["cell"] in ("gru", "lstm")
    tuning.load_selected([path])
    # a float draw keeps 3 significant digits: near the top of [1e-4, 2.3456e-3] it rounds to 0.00235 > 2.3456e-3
    top = tuning.transform(0.99999, "loguniform", [1e-4, 2.3456e-3])
    assert top == 0.00235 and tuning.value_problem(top, "loguniform", [1e-4, 2.3456e-3]) is None


@pytest.mark.parametrize("value, kind, args, problem", [
    (5.0, "loguniform", [1e-4, 3e-3], r"5\.0 is outside the searched range loguniform: \[0\.0001, 0\.003\]"),
    ("abc", "loguniform", [1e-4, 3e-3], r"'abc' \(str\) is not a number, as loguniform"),
    (True, "uniform", [0.0, 2.0], r"True \(bool\) is not a number"),
    (48.5, "int", [32, 64], r"48\.5 \(float\) is not a whole number, as int: \[32, 64\] draws"),
    (65, "int", [32, 64], r"65 is outside the searched range int"),
    ("lsmt", "choice", ["gru", "lstm"], r"'lsmt' is not one of the choices \['gru', 'lstm'\]"),
    (True, "choice", [1, 2], r"True is not one of the choices"),
    (float("nan"), "uniform", [0.0, 2.0], r"nan is outside"),
])
def test_a_value_outside_its_dimension_is_named(value, kind, args, problem):
    import re

    assert re.fullmatch(problem + ".*", tuning.value_problem(value, kind, args))


# ---------------------------------------------------------------------------------------------------------------
# At the final run: an edited or copied selection is never trained


def test_an_out_of_space_value_is_refused_at_train_time(selections):
    path, spec = selections["crnn"]
    edit(path, lr=5.0)
    with pytest.raises(FinebenchError, match=rf"{path}: values\.lr = 5\.0 is outside the searched range "
                                             rf"loguniform: \[0\.0001, 0\.01\]\. .*{FIX}"):
        with_selection(spec, path)


def test_another_models_selection_copied_in_is_refused_at_train_time(selections):
    (mine, spec), (theirs, _) = selections["crnn"], selections["resnet18"]
    shutil.copyfile(theirs, mine)
    with pytest.raises(FinebenchError, match=rf"{mine}: chosen for typefaces/resnet18, not typefaces/crnn \(a copy of "
                                             rf"another model's selection\?\).*{FIX}"):
        with_selection(spec, mine)


def test_a_value_of_the_wrong_type_is_refused_before_the_optimizer(selections):
    path, spec = selections["crnn"]
    edit(path, lr="abc")
    with pytest.raises(FinebenchError, match=r"values\.lr = 'abc' \(str\) is not a number, as loguniform: "
                                             r"\[0\.0001, 0\.01\] draws"):
        with_selection(spec, path)


def test_a_foreign_key_is_named_as_the_files_not_the_models_config(selections):
    path, spec = selections["crnn"]
    s = json.loads(path.read_text())
    edit(path, values={**s["values"], "dropout": 0.3})
    with pytest.raises(FinebenchError, match=rf"{path}: values\.dropout: not a key of the search space "
                                             rf"\(lr, weight_decay\) — a selection sets exactly the space's keys"):
        with_selection(spec, path)
    edit(path, values={"lr": s["values"]["lr"]})
    with pytest.raises(FinebenchError, match=r"values: no weight_decay, a key of the search space"):
        with_selection(spec, path)


@pytest.mark.parametrize("change, match", [
    (lambda s: s["values"].update(lr=0.005), r"values \{'lr': 0\.005, .*\} \(score 0\.7\) are not those of trial 1"),
    (lambda s: s["trials"][2].update(val_score=0.9), r"its trials do not match the digest written with them"),
    (lambda s: s.update(trial=2, values=s["trials"][2]["values"], val_score=s["trials"][2]["val_score"]),
     r"trial 2 is chosen, but the best validation score is trial 1's"),
    (lambda s: s["evp"][0].update(mean=0.99), r"its expected-best curve \(evp\) is not the one its trials' scores"),
    (lambda s: s["identity"].update(budget=3), r"its identity .* does not match its identity_hash: edited"),
    (lambda s: s.pop("trials_digest"), r"no trials_digest: not written by this finebench's `select-trials`"),
])
def test_any_other_edit_is_refused(selections, change, match):
    path, spec = selections["crnn"]
    s = json.loads(path.read_text())
    change(s)
    path.write_text(json.dumps(s))
    with pytest.raises(FinebenchError, match=match):
        with_selection(spec, path)


# ---------------------------------------------------------------------------------------------------------------
# At the tables: a copied or edited selection gives no table


def test_another_models_selection_copied_in_is_refused_by_the_tables(selections, tmp_path):
    (mine, _), (theirs, _) = selections["crnn"], selections["resnet18"]
    shutil.copyfile(theirs, mine)
    with pytest.raises(FinebenchError, match=rf"{mine}: chosen for typefaces/resnet18, not typefaces/crnn"):
        tuning.write_tables([theirs, mine], tmp_path, None)
    assert not (tmp_path / "tuning.md").exists()
    # outside the workflow's layout the folder names no model: the second selection of one model is the copy
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    shutil.copyfile(theirs, a)
    shutil.copyfile(theirs, b)
    with pytest.raises(FinebenchError, match=rf"{b}: a second selection of typefaces/resnet18 \(the first: {a}\)"):
        tuning.write_tables([a, b], tmp_path, None)


def test_an_edited_selection_is_refused_by_the_tables(selections, tmp_path):
    path, _ = selections["crnn"]
    edit(path, lr=5.0)
    with pytest.raises(FinebenchError, match=rf"{path}: values\.lr = 5\.0 is outside .*{FIX}"):
        tuning.write_tables([p for p, _ in selections.values()], tmp_path, None)


# ---------------------------------------------------------------------------------------------------------------
# MLflow: the trial runs follow the selection (a real sqlite store)


def test_a_lowered_budget_supersedes_the_trials_beyond_it(experiment_file, tmp_path):
    from mlflow.tracking import MlflowClient

    from finebench.tracking import CURRENT_RUNS, SUPERSEDED, Run, log_tuning_parent

    space = {"lr": {"loguniform": [1e-4, 1e-2]}}
    ident = {"space": space, "budget": 4, "sampler": "random", "seed": 0}
    base = {"task": "t", "dataset": "d", "modality": "image", "family": "cnn", "model": "m_1", "arch": "a"}
    other = {**base, "model": "mx1", "trial": 0, "seed": 1000}  # another model: LIKE 't/m_1/trial%' matches it
    trials = []
    for k in range(4):
        spec = {**base, "seed": 1000 + k, "trial": k}
        with Run(experiment_file, spec, tags={"finebench.trial": k}) as run:
            pass
        trials.append({"task": "t", "model": "m_1", "family": "cnn", "trial": k, "val_score": 0.5 + 0.1 * (k % 2),
                       "val_metric": "val_accuracy", "tuned_values": {"lr": 0.001 * (k + 1)}, "train_seconds": 1.0,
                       "mlflow_run_id": run.run_id})
    with Run(experiment_file, other, tags={"finebench.trial": 0}) as unrelated:
        pass
    info = json.loads(experiment_file.read_text())
    client = MlflowClient(info["tracking_uri"])

    def current():
        return sorted(r.info.run_name for r in client.search_runs([info["experiment_id"]], CURRENT_RUNS))

    out = tmp_path / "selected.json"
    four = tuning.select(trials, ident, out, experiment_file, log_parent=log_tuning_parent)
    assert current() == ["t/m_1/trial0", "t/m_1/trial1", "t/m_1/trial2", "t/m_1/trial3", "t/m_1/tuning",
                         "t/mx1/trial0"]
    three = tuning.select(trials[:3], {**ident, "budget": 3}, out, experiment_file, log_parent=log_tuning_parent)
    assert three["mlflow_parent_run_id"] != four["mlflow_parent_run_id"]
    assert current() == ["t/m_1/trial0", "t/m_1/trial1", "t/m_1/trial2", "t/m_1/tuning", "t/mx1/trial0"]
    assert client.get_run(trials[3]["mlflow_run_id"]).data.tags[SUPERSEDED] == "true"
    assert client.get_run(four["mlflow_parent_run_id"]).data.tags[SUPERSEDED] == "true"
    assert client.get_run(unrelated.run_id).data.tags[SUPERSEDED] == "false"
    # raised back to 4: trial 3 is kept (not retrained), so its run is the selection's again, and current
    tuning.select(trials, ident, out, experiment_file, log_parent=log_tuning_parent)
    assert current() == ["t/m_1/trial0", "t/m_1/trial1", "t/m_1/trial2", "t/m_1/trial3", "t/m_1/tuning",
                         "t/mx1/trial0"]
