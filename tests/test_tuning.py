"""Tuning (finebench.tuning): the expected best validation score against hand-computed cases, static seeded draws,
selection on validation, the family-order sentence, and every bad space named before any job."""

import copy
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from finebench import config, tuning
from finebench.errors import ConfigError, FinebenchError


@pytest.fixture
def embedded(repo):
    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


def tuned(cfg, **settings):
    cfg = copy.deepcopy(cfg)
    cfg["tuning"] = {"budget": 4, **settings}
    return cfg


# ---------------------------------------------------------------------------------------------------------------
# Expected best of n (Dodge et al. 2019), by hand


def test_expected_max_matches_a_hand_computed_case():
    # sorted scores 0.2, 0.5, 0.9; P(max of n = v(i)) = (i/3)^n - ((i-1)/3)^n
    mean, std = tuning.expected_max([0.9, 0.2, 0.5])
    assert mean[0] == pytest.approx((0.2 + 0.5 + 0.9) / 3)
    # n = 2: P = 1/9, 3/9, 5/9 -> (0.2 + 1.5 + 4.5) / 9
    assert mean[1] == pytest.approx(6.2 / 9)
    e2 = (0.04 + 3 * 0.25 + 5 * 0.81) / 9
    assert std[1] == pytest.approx(math.sqrt(e2 - (6.2 / 9) ** 2))
    # n = 3: P = 1/27, 7/27, 19/27
    assert mean[2] == pytest.approx((0.2 + 7 * 0.5 + 19 * 0.9) / 27)
    assert std[0] == pytest.approx(np.std([0.2, 0.5, 0.9]))  # n = 1: the scores' own (population) spread


def test_expected_max_rises_towards_the_best_and_ties_are_constant():
    mean, std = tuning.expected_max([0.1, 0.4, 0.4, 0.8, 0.3])
    assert np.all(np.diff(mean) > 0) and mean[-1] < 0.8
    mean, std = tuning.expected_max([0.5, 0.5])
    assert list(mean) == [0.5, 0.5] and list(std) == [0.0, 0.0]


# ---------------------------------------------------------------------------------------------------------------
# Static draws


def test_draws_are_seeded_bounded_and_a_larger_budget_keeps_the_earlier_trials(embedded):
    cfg = config.with_defaults(tuned(embedded, budget=8))
    a = tuning.draws(cfg, "typefaces", "vit")
    assert a == tuning.draws(cfg, "typefaces", "vit")  # fixed up front: the DAG is static
    assert a != tuning.draws(cfg, "typefaces", "resnet18")  # each (task, model) draws its own
    assert len(a) == 8 and all(set(d) == {"lr", "weight_decay", "warmup_epochs"} for d in a)
    assert all(1e-4 <= d["lr"] <= 1e-2 and 0.0 <= d["warmup_epochs"] <= 2.0 for d in a)
    assert all(float(f"{d['lr']:.3g}") == d["lr"] for d in a)  # 3 significant digits
    assert len({d["lr"] for d in a}) == 8
    cfg12 = config.with_defaults(tuned(embedded, budget=12))
    assert tuning.draws(cfg12, "typefaces", "vit")[:8] == a
    other_seed = config.with_defaults(tuned(embedded, budget=8, seed=1))
    assert tuning.draws(other_seed, "typefaces", "vit") != a


def test_transform_of_each_distribution():
    assert tuning.transform(0.0, "loguniform", [1e-4, 1e-2]) == pytest.approx(1e-4)
    assert tuning.transform(0.5, "loguniform", [1e-4, 1e-2]) == pytest.approx(1e-3)
    assert tuning.transform(0.25, "uniform", [0.0, 2.0]) == 0.5
    assert [tuning.transform(u, "int", [1, 3]) for u in (0.0, 0.34, 0.67, 0.999)] == [1, 2, 3, 3]
    assert [tuning.transform(u, "choice", ["gru", "lstm"]) for u in (0.1, 0.9)] == ["gru", "lstm"]


def test_sobol_points_are_balanced_and_a_budget_not_a_power_of_two_is_warned(embedded):
    u = tuning.unit_points(8, 2, "sobol", 3)
    assert u.shape == (8, 2)
    assert sorted(np.floor(u[:, 0] * 8).astype(int)) == list(range(8))  # one point per eighth
    cfg = tuned(embedded, budget=6, sampler="sobol")
    with pytest.warns(UserWarning, match=r"tuning\.sampler: sobol with a budget of 6 trials"):
        config.check_tuning(config.with_defaults(cfg))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config.check_tuning(config.with_defaults(tuned(embedded, budget=8, sampler="sobol")))


def test_trial_specs_carry_their_values_and_no_budget_final_specs_name_the_tuning(embedded):
    cfg = config.with_defaults(tuned(embedded, budget=3, runs_per_job=2))
    specs = config.trial_specs(cfg, "wordnet", "bilstm")
    assert [s["trial"] for s in specs] == [0, 1, 2] and [s["seed"] for s in specs] == [1000, 1001, 1002]
    assert all(s["training"]["lr"] == s["tuned_values"]["lr"] and "tuning" not in s for s in specs)
    assert specs[0]["training"]["epochs"] == 5  # the task's own training: keys stay
    final = config.resolve_spec(cfg, "wordnet", "bilstm", 0)
    assert final["tuning"]["budget"] == 3 and final["training"]["lr"] == 0.002  # chosen values come at run time
    assert [list(c) for c in tuning.chunks(cfg, "wordnet", "bilstm")] == [[0, 1], [2]]
    # a model that opts out, and a config without tuning: specs as before
    cfg["models"]["bilstm"]["tuning"] = False
    assert "tuning" not in config.resolve_spec(cfg, "wordnet", "bilstm", 0)
    plain = config.with_defaults(embedded)
    assert all("tuning" not in config.resolve_spec(plain, *run) for run in config.runs(plain))


def test_a_model_space_replaces_its_family_default_and_builder_options_go_to_the_model(embedded):
    cfg = tuned(embedded)
    cfg["models"]["crnn"]["tuning"] = {"space": {"hidden": {"int": [32, 64]}, "cell": {"choice": ["gru", "lstm"]}},
                                       "budget": 2}
    config.check(cfg)
    cfg = config.with_defaults(cfg)
    specs = config.trial_specs(cfg, "typefaces", "crnn")
    assert len(specs) == 2
    assert all(32 <= s["model_kwargs"]["hidden"] <= 64 and s["model_kwargs"]["cell"] in ("gru", "lstm") for s in specs)
    assert specs[0]["training"]["lr"] == 0.002  # not in its space: hand-set
    assert tuning.space_of(cfg, "vit")[1] == "the default space of family transformer"
    cfg["tuning"]["spaces"] = {"transformer": {"lr": {"loguniform": [1e-3, 2e-3]}}}
    assert tuning.space_of(cfg, "vit") == ({"lr": {"loguniform": [1e-3, 2e-3]}}, "tuning.spaces.transformer")


# ---------------------------------------------------------------------------------------------------------------
# Bad input, before any job: each names the config key


@pytest.mark.parametrize("space, match", [
    ({"lrr": {"loguniform": [1e-4, 1e-2]}}, r"models\.crnn\.tuning\.space\.lrr: neither a key of training: nor an "
                                            r"option of 'crnn' \(model crnn\) \(did you mean 'lr'"),
    ({"lr": {"loguniform": [1e-2, 1e-4]}}, r"models\.crnn\.tuning\.space\.lr\.loguniform: low 0\.01 >= high 0\.0001"),
    ({"lr": {"loguniform": [0, 1e-2]}}, r"space\.lr\.loguniform: low 0 <= 0; a log-uniform range needs positive"),
    ({"weight_decay": {"uniform": [0.1, 0.1]}}, r"space\.weight_decay\.uniform: low 0\.1 >= high 0\.1"),
    ({"lr": {"logunifrom": [1e-4, 1e-2]}}, r"space\.lr\.logunifrom: unknown distribution \(did you mean "
                                           r"'loguniform'"),
    ({"cell": {"choice": ["gru", "lsmt"]}}, r"space\.cell: 'lsmt' is rejected by 'crnn' \(model crnn\)"),
    ({"optimizer": {"choice": ["adamw", "adam"]}}, r"space\.optimizer: 'adam' is not a valid training\.optimizer"),
    ({"momentum": {"uniform": [0.8, 0.99]}}, r"space\.momentum: model crnn does not use it — momentum is used by "
                                             r"optimizer sgd only"),
    ({"label_smoothing": {"uniform": [0.0, 0.2]}, "hidden": {"int": [10.5, 20]}}, r"space\.hidden\.int: whole-number"),
    ({"family": {"choice": ["cnn", "rnn"]}}, r"space\.family: family is not tunable"),
    ({"lr": [1e-4, 1e-2]}, r"space\.lr: one distribution"),
    ({"batch_size": {"loguniform": [16, 128]}}, r"space\.batch_size\.loguniform: training\.batch_size is a whole "
                                                r"number; draw it with int"),
    ({"hidden": {"uniform": [64, 128]}}, r"space\.hidden: 87\.68 is rejected by 'crnn' .*for a whole-number option "
                                         r"use int"),
])
def test_a_bad_space_is_named_before_any_job(embedded, space, match):
    cfg = tuned(embedded)
    cfg["models"]["crnn"]["tuning"] = {"space": space}
    with pytest.raises(ConfigError, match=match):
        config.check(cfg)


def test_bad_budgets_tasks_and_families_are_named(embedded, tmp_path):
    cfg = tuned(embedded)
    cfg["models"]["vit"]["tuning"] = {"budget": 0}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"models\.vit\.tuning: .*(budget|not valid)"):
        config.load(path)
    cfg["models"]["vit"]["tuning"] = {"budget": 2}
    cfg["tuning"]["budget"] = 0
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"tuning\.budget: 0 is less than the minimum of 1"):
        config.load(path)
    cfg = tuned(embedded, tasks=["typefaces", "wordnett"])
    with pytest.raises(ConfigError, match=r"tuning\.tasks: unknown task 'wordnett' \(did you mean 'wordnet'"):
        config.check(cfg)
    cfg = tuned(embedded, spaces={"cnns": {"lr": {"uniform": [0.001, 0.01]}}})
    with pytest.raises(ConfigError, match=r"tuning\.spaces\.cnns: not a family \(did you mean 'cnn'"):
        config.check(cfg)
    cfg = tuned(embedded, spaces={"other": {"lr": {"loguniform": [0, 1]}}})  # no tuned model is of family other
    with pytest.raises(ConfigError, match=r"tuning\.spaces\.other\.lr\.loguniform: low 0 <= 0"):
        config.check(cfg)
    cfg = tuned(embedded, spaces={"cnn": {"lr": {"uniform": [0.01, 0.001]}}})
    with pytest.raises(ConfigError, match=r"tuning\.spaces\.cnn\.lr\.uniform: low 0\.01 >= high 0\.001"):
        config.check(cfg)


def test_a_final_seed_that_is_also_a_trials_seed_is_named(embedded):
    cfg = tuned(embedded, budget=4)
    cfg["seeds"] = [0, 1, 1003]
    with pytest.raises(ConfigError, match=r"seeds: 1003 is also the seed of tuning trial 3 \(trial k trains with seed "
                                          r"1000 \+ k\); a final run must not repeat a trial"):
        config.check(cfg)
    cfg["seeds"] = [0, 1, 1004]  # past the last trial's seed
    config.check(cfg)


def test_an_empty_tuning_section_tunes_with_every_default(embedded):
    embedded["tuning"] = {}
    cfg = config.with_defaults(embedded)
    assert tuning.settings(cfg)["budget"] == 8 and tuning.is_tuned(cfg, "typefaces", "vit")


def test_a_model_tuning_without_a_tuning_section_is_named(embedded):
    embedded["models"]["vit"]["tuning"] = {"budget": 4}
    with pytest.raises(ConfigError, match=r"models\.vit\.tuning: given, but the config has no top-level tuning:"):
        config.check(embedded)


def test_a_later_config_file_leaves_a_task_out_with_null(repo, tmp_path):
    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    cfg["tasks"]["photos_x2"] = None
    assert config.drop_removed(cfg) == ["tasks.photos_x2"] and "photos_x2" not in cfg["tasks"]
    merged = {**yaml.safe_load((repo / "config" / "config.yaml").read_text()),
              **{k: v for k, v in yaml.safe_load((repo / "config" / "tune.yaml").read_text()).items() if k != "tasks"}}
    merged["tasks"]["photos_x2"] = None
    merged["tasks"]["speech_sentences_synth"] = None  # as config/tune.yaml leaves it out (classification only)
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(merged))
    loaded = config.load(path)
    assert loaded["results"] == "results/tuned" and loaded["tuning"]["budget"] >= 8
    assert {t for t, _, _ in config.runs(loaded)} == {"typefaces", "wordnet", "speech_commands_synth"}


# ---------------------------------------------------------------------------------------------------------------
# Selection and what the tables say


def trial(k, score, **values):
    return {"task": "t", "model": "m", "family": "cnn", "trial": k, "val_score": score, "val_metric": "val_accuracy",
            "tuned_values": values or {"lr": 0.001 * (k + 1)}, "train_seconds": 1.0, "mlflow_run_id": f"r{k}"}


def test_select_picks_the_best_validation_score_lowest_trial_on_ties(tmp_path):
    identity = {"space": {"lr": {"loguniform": [1e-4, 1e-2]}}, "budget": 4, "sampler": "random", "seed": 0}
    out = tmp_path / "selected.json"
    s = tuning.select([trial(2, 0.7), trial(0, 0.5), trial(3, 0.7), trial(1, None)], identity, out)
    assert s["trial"] == 2 and s["values"] == {"lr": 0.003} and s["val_score"] == 0.7
    assert json.loads(out.read_text()) == s
    assert [e["n"] for e in s["evp"]] == [1, 2, 3]  # over the 3 finite scores
    assert s["evp"][0]["mean"] == pytest.approx((0.5 + 0.7 + 0.7) / 3)
    with pytest.raises(ConfigError, match=r"trials \[0, 1\] given, the tuning has 4"):
        tuning.select([trial(0, 0.5), trial(1, 0.6)], identity, out)


def test_a_run_refuses_a_selection_of_another_tuning(tmp_path):
    from finebench.train import with_selection

    identity = {"space": {"lr": {"loguniform": [1e-4, 1e-2]}}, "budget": 2, "sampler": "random", "seed": 0}
    path = tmp_path / "selected.json"
    tuning.select([trial(0, 0.5), trial(1, 0.6)], identity, path)
    spec = {"task": "t", "model": "m", "training": {"lr": 0.002}, "model_kwargs": {}, "tuning": identity}
    out = with_selection(spec, path)
    assert out["training"]["lr"] == 0.002 * 1 and out["tuning"]["trial"] == 1  # trial 1's lr is 0.002
    with pytest.raises(FinebenchError, match=r"chosen by another tuning of t/m"):
        with_selection({**spec, "tuning": {**identity, "budget": 3}}, path)


def test_the_order_sentence_says_where_the_families_flip():
    evp = pd.DataFrame([{"task": "t", "model": m, "family": f, "n": n, "evp_mean": v}
                        for m, f, curve in (("c", "cnn", [0.50, 0.58, 0.60, 0.61]),
                                            ("v", "transformer", [0.40, 0.55, 0.65, 0.70]),
                                            ("r", "rnn", [0.30, 0.35, 0.40, 0.42]))
                        for n, v in enumerate(curve, 1)])
    text = tuning.order_sentence(evp)
    assert text.startswith("n = 1–2: cnn > transformer > rnn; n = 3–4: transformer > cnn > rnn.")
    assert "transformer overtakes cnn from n ≥ 3" in text
    steady = evp[evp.model != "v"]
    assert tuning.order_sentence(steady) == ("The order of the families holds at every budget from n = 1 to 4 "
                                             "trials: cnn > rnn.")


def test_tangs_unbiased_expected_best_by_hand():
    # 3 trials 1, 2, 3: the best of every 2-subset is 2, 3, 3 → 8/3; Dodge's with replacement: 1/9 + 2·3/9 + 3·5/9
    assert tuning.unbiased_expected_max([3.0, 1.0, 2.0]) == pytest.approx([2.0, 8 / 3, 3.0])
    assert tuning.expected_max([1.0, 2.0, 3.0])[0] == pytest.approx([2.0, 22 / 9, 8 / 3])
    assert tuning.tang_weights(3).sum(axis=1) == pytest.approx([1, 1, 1])  # each n: a distribution over the trials


def test_the_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    scores = [0.51, 0.62, 0.58, 0.70, 0.66, 0.49, 0.60, 0.64]
    lo, hi = tuning.bootstrap_expected_max(scores)
    again = tuning.bootstrap_expected_max(scores)
    assert (lo == again[0]).all() and (hi == again[1]).all()  # the same scores give the same interval
    est = tuning.unbiased_expected_max(scores)
    assert (lo <= est + 1e-12).all() and (est <= hi + 1e-12).all() and (lo < hi).all()
    assert hi[-1] == pytest.approx(max(scores))  # the best of N resampled trials is at most the best trial
    one = tuning.bootstrap_expected_max([0.5])
    assert list(one[0]) == list(one[1]) == [0.5]


def test_a_change_of_order_is_a_flip_only_where_the_intervals_separate():
    def frame(half):  # the curves of the flip test above, each with a band of ± half around it
        return pd.DataFrame([{"task": "t", "model": m, "family": f, "n": n, "evp_unbiased": v, "evp_lo": v - half,
                              "evp_hi": v + half}
                             for m, f, curve in (("c", "cnn", [0.50, 0.58, 0.60, 0.61]),
                                                 ("v", "transformer", [0.40, 0.55, 0.65, 0.70]))
                             for n, v in enumerate(curve, 1)])

    narrow = tuning.order_sentence(frame(0.01))  # cnn ahead at n = 1 (0.49-0.51 vs 0.39-0.41), behind at n = 4
    assert ("transformer overtakes cnn from n ≥ 3 (the 95 % bootstrap intervals separate them before and after)"
            in narrow)
    wide = tuning.order_sentence(frame(0.2))
    assert "transformer passes cnn from n ≥ 3 by the estimates, within the 95 % bootstrap intervals" in wide
    assert "overtakes" not in wide
    steady = frame(0.2)[lambda d: d.model == "c"].assign(family="cnn")
    other = steady.assign(model="r", family="rnn", evp_unbiased=steady["evp_unbiased"] - 0.1)
    text = tuning.order_sentence(pd.concat([steady, other.assign(evp_lo=other["evp_unbiased"] - 0.2,
                                                                 evp_hi=other["evp_unbiased"] + 0.2)]))
    assert text.startswith("The order of the families holds at every budget from n = 1 to 4 trials: cnn > rnn.")
    assert "intervals of cnn and rnn overlap at every n: these trials do not separate them" in text


# ---------------------------------------------------------------------------------------------------------------
# The workflow: the smoke suite with tuning (budget 2), a classification and a super-resolution task


@pytest.fixture(scope="module")
def tuned_run(repo, tmp_path_factory):
    from test_workflow import snakemake

    work = tmp_path_factory.mktemp("tuned")
    cfg = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    cfg["tasks"] = {k: cfg["tasks"][k] for k in ("typefaces", "sr")}
    cfg["tuning"] = {"budget": 2, "runs_per_job": 2}
    cfg["seeds_per_job"] = 2  # a tuned model's final seeds in one job too (train-runs --tuned)
    path = work / "tuned.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(repo, work, path)
    return work, path, cfg


def tuned_pairs(cfg):
    cfg = config.with_defaults(cfg)
    return [(t, m) for t in cfg["tasks"] for m in config.task_models(cfg, t)]


@pytest.mark.slow
def test_trials_score_validation_only_and_the_best_one_sets_the_final_runs(tuned_run):
    work, _, cfg = tuned_run
    for task, model in tuned_pairs(cfg):
        root = work / "results" / "tune" / task / model
        trials = [json.loads((root / f"trial{k}" / "metrics.json").read_text()) for k in range(2)]
        assert all(not any(k.startswith("test_") for k in t) for t in trials)  # the test split is never scored
        assert not any((root / f"trial{k}" / name).exists() for k in range(2)
                       for name in ("predictions.csv", "confusion.csv", "per_image.csv"))
        selected = json.loads((root / "selected.json").read_text())
        best = max(trials, key=lambda t: (t["val_score"], -t["trial"]))
        assert selected["trial"] == best["trial"] and selected["values"] == best["tuned_values"]
        for seed in cfg["seeds"]:
            run = work / "results" / "runs" / task / model / f"seed{seed}"
            spec = json.loads((run / "spec.json").read_text())
            assert all(spec["training"][k] == v for k, v in selected["values"].items())
            m = json.loads((run / "metrics.json").read_text())
            assert m["tuning"]["trial"] == selected["trial"] and m["tuning"]["budget"] == 2


@pytest.mark.slow
def test_tables_say_tuned_with_budget_values_and_expected_best(tuned_run):
    work, _, cfg = tuned_run
    tables = work / "results" / "tables"
    for board in ("leaderboard.csv", "leaderboard_sr.csv"):
        b = pd.read_csv(tables / board)
        models = b[~b["is_baseline"].astype(bool)] if "is_baseline" in b else b
        assert models["tuning"].str.startswith("tuned: 2 trials (random), trial ").all(), models["tuning"]
        assert models["tuned_values"].str.contains("lr=").all()
    trials = pd.read_csv(tables / "tuning.csv")
    assert len(trials) == 2 * len(tuned_pairs(cfg)) and trials.groupby(["task", "model"])["chosen"].sum().eq(1).all()
    evp = pd.read_csv(tables / "evp.csv")
    assert sorted(evp["n"].unique()) == [1, 2]
    for (task, model), g in evp.groupby(["task", "model"]):
        scores = trials[(trials.task == task) & (trials.model == model)]["val_score"]
        assert g["evp_mean"].iloc[0] == pytest.approx(scores.mean())
        assert g["evp_mean"].iloc[1] == pytest.approx(0.25 * scores.min() + 0.75 * scores.max())
        assert g["evp_unbiased"].iloc[1] == pytest.approx(scores.max())  # Tang: the best of the 2 trials
        assert (g["evp_lo"] <= g["evp_unbiased"] + 1e-12).all() and (g["evp_unbiased"] <= g["evp_hi"] + 1e-12).all()
    md = (tables / "tuning.md").read_text()
    assert "## typefaces" in md and "## sr" in md and ("The order" in md or "holds at every budget" in md)
    assert "Tuned on validation (2 trials per model" in (tables / "leaderboard.md").read_text()
    assert (work / "results" / "plots" / "typefaces_evp.png").stat().st_size > 10_000


@pytest.mark.slow
def test_mlflow_nests_every_trial_under_its_tuning_parent(tuned_run):
    from mlflow.tracking import MlflowClient

    work, _, cfg = tuned_run
    client = MlflowClient(f"sqlite:///{work}/results/mlflow.db")
    exp = client.get_experiment_by_name(cfg["experiment"])
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    by_name = {r.info.run_name: r for r in runs}
    assert not [r.info.run_name for r in runs if r.info.status != "FINISHED"]
    for task, model in tuned_pairs(cfg):
        parent = by_name[f"{task}/{model}/tuning"]
        assert parent.data.tags["finebench.tuning"] == "true" and parent.data.params["budget"] == "2"
        history = client.get_metric_history(parent.info.run_id, "evp_mean")
        assert sorted(m.step for m in history) == [1, 2]
        for k in range(2):
            child = by_name[f"{task}/{model}/trial{k}"]
            assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert child.data.tags["finebench.trial"] == str(k) and "tuned.lr" in child.data.tags
            assert not any(key.startswith("test_") for key in child.data.metrics)


@pytest.mark.slow
def test_unchanged_reruns_nothing_and_one_models_budget_reruns_only_it(repo, tuned_run, tmp_path):
    import shutil

    from test_workflow import planned_jobs, snakemake

    work, path, cfg = tuned_run
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(snakemake(repo, work, path, "-n"))
    copy_dir = tmp_path / "work"
    shutil.copytree(work, copy_dir, symlinks=True)
    cfg = copy.deepcopy(cfg)
    cfg["models"]["crnn"]["tuning"] = {"budget": 3}
    changed = copy_dir / "tuned.yaml"
    changed.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(repo, copy_dir, changed, "-n")
    jobs = planned_jobs(proc)
    assert jobs["tune"] == 1 and jobs["select_trials"] == 1  # trial 2 only: trials 0 and 1 are kept
    assert jobs["train_classification"] == len(config.seed_groups(cfg)) == 1 and "train_superres" not in jobs
    assert "results/tune/typefaces/crnn/trials1.json" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_group_of_trials_rerun_keeps_the_trials_already_done(repo, tuned_run, tmp_path):
    import shutil

    from test_workflow import snakemake

    work, path, _ = tuned_run
    copy_dir = tmp_path / "work"
    shutil.copytree(work, copy_dir, symlinks=True)
    root = copy_dir / "results" / "tune" / "typefaces" / "vit"
    for name in ("trials0.json", "selected.json"):  # as if the group's job was killed before its end
        (root / name).unlink()
    snakemake(repo, copy_dir, copy_dir / path.name)
    log = (copy_dir / "results" / "logs" / "tune" / "typefaces" / "vit" / "trials0.log").read_text()
    assert log.count("done earlier") == 2 and "epoch 1:" not in log


def test_a_trial_score_says_when_it_is_a_negated_metric():
    from finebench.train import score_name

    assert score_name({"best_val_accuracy": 0.5}, 0.5) == "val_accuracy"
    assert score_name({"best_val_psnr": 31.2, "best_val_ssim": 0.9}, 31.2) == "val_psnr"
    assert score_name({"best_val_wer": 0.3, "best_val_cer": 0.1}, -0.3) == "-val_wer"  # asr: the lowest WER wins
