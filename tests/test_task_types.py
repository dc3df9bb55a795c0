"""The task-type seam holds: a toy task type registered from the test suite (tests/toy_regression.py: regression,
MAE, lower is better) is trained, ranked, tabled and summarised in MLflow without any change to the trainer, the
report builder, the MLflow summaries or the workflow's rules. It runs in processes of its own
(FINEBENCH_TASK_TYPES=toy_regression), as a plug-in would, so the built-in types' tests never see it."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from finebench.tasks.objective import Objective
from finebench.tasks.tables import TEST_COLUMNS, Tables, stat_columns

TESTS = Path(__file__).resolve().parent


def plugin_env():
    return {**os.environ, "FINEBENCH_TASK_TYPES": "toy_regression",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}


def test_built_in_task_types_declare_what_the_seam_needs():
    from finebench import report
    from finebench.tasks import TASK_TYPES

    assert list(TASK_TYPES) == ["classification", "superres", "asr"]
    assert [tt.primary.higher_is_better for tt in TASK_TYPES.values()] == [True, True, False]  # asr: WER
    for tt in TASK_TYPES.values():
        assert tt.rule == f"train_{tt.name}"
        assert set(tt.table_files) <= set(report.TABLE_FILES)
        code = tt.table_code
        assert isinstance(code, Tables) and code.task_type is tt
        # the one renderer reads the metrics' statistics and the tests against the best from every board
        assert set(stat_columns(tt)) | set(TEST_COLUMNS) <= set(code.BOARD_COLUMNS), tt.name
        assert code.BOARD_COLUMNS[:2] == ["task", "modality"] and code.FAMILY_COLUMNS[:2] == ["task", "modality"]
        assert isinstance(tt.new_objective(), Objective)


class Half(Objective):  # a type that forgot two of the methods every type must say
    def loss(self, out, y, t): ...
    def evaluate(self, model, loader, autocast, num_classes): ...
    def selection_key(self, ev): ...
    def epoch_fields(self, ev): ...
    def final(self, ev, data, out_dir, title, more): ...


class NotOne:
    pass


def test_an_objective_must_subclass_objective_and_say_everything_it_must():
    from finebench.errors import FinebenchError
    from finebench.tasks import TaskType

    half = TaskType("half", "half", (), objective=f"{__name__}:Half", tables="x")
    with pytest.raises(FinebenchError, match=r"objective test_task_types:Half lacks best_fields, headline "):
        half.new_objective()
    other = TaskType("other", "other", (), objective=f"{__name__}:NotOne", tables="x")
    with pytest.raises(FinebenchError, match="is not a subclass of finebench.tasks.objective.Objective"):
        other.new_objective()


def test_tables_must_name_a_tables_subclass():
    from finebench.errors import FinebenchError
    from finebench.tasks import TaskType

    for tables in (f"{__name__}:NotOne", "finebench.tasks.classification.tables", f"{__name__}:Missing"):
        with pytest.raises(FinebenchError, match=r"tables .* is not \"module:Class\" of a subclass of "
                                                 r"finebench.tasks.tables.Tables"):
            _ = TaskType("other", "other", (), objective="x", tables=tables).table_code


OWNED_KEYS = textwrap.dedent("""
    import json
    from finebench import config, tuning
    from finebench.errors import ConfigError

    cfg = {"experiment": "toy", "seeds": [0], "tasks": {"lines": {"dataset": "toy_lines"}},
           "training": {"huber_delta": 0.5},
           "models": {"linear": {"family": "other", "modality": "vision", "arch": "toy_linear"}}}
    config.validate_schema(cfg)
    out = {"readers": config.TRAINING_OWNERS["huber_delta"],
           "unused": tuning.unused_training_key("huber_delta", {}, {"classification"}, "vision")}
    try:
        config.validate_schema({**cfg, "training": {"huber_delt": 0.5}})
    except ConfigError as exc:
        out["typo"] = str(exc)
    print(json.dumps(out))
""")


def test_a_task_type_owns_its_training_keys():
    """Its declared keys join the config schema (a typo is still refused) and the tuning checks name the types that
    read them; the built-in types' keys are declared the same way."""
    from finebench import config, tuning

    done = subprocess.run([sys.executable, "-c", OWNED_KEYS], env=plugin_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["readers"] == ["regression"]
    assert out["unused"] == "huber_delta is read by regression tasks only (this model runs classification tasks)"
    assert "training: Additional properties are not allowed ('huber_delt' was unexpected)" in out["typo"]
    assert config.TRAINING_OWNERS == {"label_smoothing": ("classification",), "loss": ("superres",),
                                      "batch_seconds": ("asr",), "length_buckets": ("asr",)}
    assert "huber_delta" not in config.TRAINING_KEYS  # the toy is not registered in this process
    assert config.TRAINING_DEFAULTS["label_smoothing"] == 0.0  # classification's default, as before
    assert (tuning.unused_training_key("length_buckets", {}, {"classification", "superres"}, "vision")
            == "length_buckets is read by speech recognition tasks only (this model runs classification, "
               "super-resolution tasks)")
    assert tuning.unused_training_key("label_smoothing", {}, {"classification", "asr"}, "speech") is None


def test_the_objectives_defaults_are_the_trainers():
    """Without hooks of its own a type gets the train split's size, no step count of its own and no memory advice."""

    class Data:
        manifest = {"splits": {"train": {"n": 37}}}

    class Whole(Half):
        def best_fields(self, key): ...
        def headline(self, result): ...

    obj = Whole()
    assert obj.train_size(Data()) == 37 and obj.train_steps(Data(), {}, None, None) is None
    assert obj.eval_memory_advice is None and obj.cost_memory_advice is None


SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from finebench import config, report
    from finebench.data import prepare_task
    from finebench.tracking import init_experiment, log_summaries
    from finebench.train import fit

    out = Path(sys.argv[1])
    prepare_task("lines", "toy_lines", {"n_train": 256, "n_eval": 64, "noise": 0.1, "seed": 0}, out / "data")
    init_experiment(f"sqlite:///{out}/mlflow.db", "toy", out / "artifacts", out / "experiment.json")
    cfg = config.with_defaults({
        "experiment": "toy", "seeds": [0, 1, 2], "tasks": {"lines": {"dataset": "toy_lines"}},
        "training": {"epochs": 8, "batch_size": 32, "lr": 0.05, "weight_decay": 0.0},
        "models": {"linear": {"family": "other", "modality": "vision", "arch": "toy_linear"},
                   "mlp": {"family": "other", "modality": "vision", "arch": "toy_mlp", "hidden": 4,
                           "training": {"lr": 0.0003}}}})
    config.check(cfg)
    files = []
    for model in ("linear", "mlp"):
        for seed in (0, 1, 2):
            run = out / "runs" / "lines" / model / f"seed{seed}"
            fit(config.resolve_spec(cfg, "lines", model, seed), out / "data", run, out / "experiment.json",
                device="cpu")
            files.append(run / "metrics.json")
    report.aggregate(files, out / "tables", out / "plots")
    print(json.dumps(log_summaries(out / "experiment.json", out / "tables", out / "plots", out / "summary.json")))
""")


def test_a_toy_task_type_is_trained_ranked_tabled_and_summarised_without_touching_finebench(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=plugin_env(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    runs = {m: [json.loads((tmp_path / f"runs/lines/{m}/seed{s}/metrics.json").read_text()) for s in (0, 1, 2)]
            for m in ("linear", "mlp")}
    mae = {m: sum(r["test_mae"] for r in rs) / 3 for m, rs in runs.items()}
    assert mae["linear"] < mae["mlp"]  # the linear model fits a linear target; the tiny, slow MLP does not yet
    assert all((tmp_path / f"runs/lines/{m}/seed0/predictions.csv").is_file() for m in mae)  # its declared run file
    board = pd.read_csv(tmp_path / "tables" / "leaderboard_regression.csv").set_index("model")
    # ranked in the metric's direction: the lower MAE is rank 1 and the best
    assert board.loc["linear", "rank"] == 1 and board.loc["mlp", "rank"] == 2 and board.loc["linear", "is_best"]
    assert board.loc["linear", "test_mae_mean"] == pytest.approx(mae["linear"])
    assert not board.loc["mlp", "tie_with_best"] and board.loc["mlp", "p_vs_best"] < 0.05
    # its per-example scores (absolute errors): the interval over seeds and test examples and the paired test
    assert board.loc["mlp", "tie_test"] == "paired" and board.loc["linear", "test_mae_ci95_comb"] > 0
    fam = pd.read_csv(tmp_path / "tables" / "families_regression.csv")
    assert list(fam["best_model"]) == ["linear"]
    md = (tmp_path / "tables" / "leaderboard.md").read_text()
    assert "No classification task in this run." in md and "# Regression" in md and "## lines" in md
    # the one renderer wrote its part of every shared file from its declarations: MAE in its format, bold best
    assert f"**{mae['linear']:.3f} ± " in md and "| MAE " in md and "| RMSE " in md
    assert "# Cost of each regression model" in (tmp_path / "tables" / "costs.md").read_text()
    families_md = (tmp_path / "tables" / "families.md").read_text()
    assert "# Regression: best model of each family per task" in families_md and "| best MAE " in families_md
    assert (tmp_path / "plots" / "lines_learning_curves.png").is_file()
    # MLflow: the runs, and a summary run for the task holding the regression board, scored by MAE
    from mlflow.tracking import MlflowClient

    info = json.loads((tmp_path / "experiment.json").read_text())
    client = MlflowClient(info["tracking_uri"])
    run = client.get_run(summary["summary_runs"]["lines"])
    assert run.info.run_name == "lines/summary" and run.data.tags["best_model"] == "linear"
    assert run.data.metrics["linear.test_mae_mean"] == pytest.approx(mae["linear"])
    assert {f.path for f in client.list_artifacts(run.info.run_id, "plots")} == {"plots/lines_learning_curves.png"}
    trained = client.search_runs([info["experiment_id"]], "tags.task = 'lines' and attributes.status = 'FINISHED'")
    assert len([r for r in trained if r.data.tags.get("finebench.summary") != "true"]) == 6
    assert all(r.data.metrics.get("val_mae") is not None for r in trained if r.info.run_name != "lines/summary")


TOY_CONFIG = {"experiment": "toy", "tracking_uri": "sqlite:///results/mlflow.db", "seeds": [0, 1],
              "tasks": {"lines": {"dataset": "toy_lines", "n_train": 128}},
              "training": {"epochs": 3, "batch_size": 32, "lr": 0.05, "weight_decay": 0.0, "huber_delta": 1.0},
              "models": {"linear": {"family": "other", "modality": "vision", "arch": "toy_linear"}}}


@pytest.mark.slow  # a Snakemake run: prepare, 2 training jobs, aggregate, summaries
def test_the_workflow_runs_a_toy_task_type_with_its_own_rule_and_outputs(repo, tmp_path):
    import yaml

    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(TOY_CONFIG))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(tmp_path),
           "--cores", "2", "--configfile", str(path)]
    plan = subprocess.run([*cmd[:-2], "-n", *cmd[-2:]], env=plugin_env(), capture_output=True, text=True)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "rule train_regression:" in plan.stdout + plan.stderr  # generated from its declaration
    done = subprocess.run(cmd, env=plugin_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    run = tmp_path / "results" / "runs" / "lines" / "linear" / "seed1"
    assert (run / "predictions.csv").is_file() and (run / "metrics.json").is_file()
    board = pd.read_csv(tmp_path / "results" / "tables" / "leaderboard_regression.csv")
    assert list(board["model"]) == ["linear"] and list(board["n_seeds"]) == [2]
    assert (tmp_path / "results" / "plots" / "lines_learning_curves.png").is_file()
    summary = json.loads((tmp_path / "results" / "tables" / "mlflow_summary.json").read_text())
    assert list(summary["summary_runs"]) == ["lines"]
    again = subprocess.run([*cmd[:-2], "-n", *cmd[-2:]], env=plugin_env(), capture_output=True, text=True)
    assert "Nothing to be done" in again.stdout + again.stderr
