"""Nothing lost under hostile input (#32): names that climb out of results/, a results: folder outside the working
directory, a damaged metrics.json, degenerate statistics, plots of a task with a prefix name, alias bombs and
out-of-range numbers in the config. Each test failed at eb2dbfa."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from finebench import config, report, stats
from finebench.errors import ConfigError, FinebenchError
from test_report import runs_frame, write_classification_runs  # noqa: E402


@pytest.fixture
def smoke(repo):
    return yaml.safe_load((repo / "config" / "smoke.yaml").read_text())


def snakemake_dry_run(repo, workdir, cfg, timeout=120):
    path = workdir / "c.yaml"
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    snakemake = shutil.which("snakemake", path=os.path.dirname(sys.executable))
    out = subprocess.run([snakemake, "-n", "--cores", "1", "--configfile", str(path), "-s", str(repo / "Snakefile"),
                          "--directory", str(workdir)], capture_output=True, text=True, cwd=workdir, timeout=timeout)
    return out.returncode, out.stdout + out.stderr


# --- 1. names and folders ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "x\\y", "tables", "summary", "Tuning"])
@pytest.mark.parametrize("section", ["tasks", "models"])
def test_names_that_climb_or_take_finebenchs_own_folders_are_refused(smoke, section, name):
    first = next(iter(smoke[section]))
    smoke[section][name] = smoke[section].pop(first)
    with pytest.raises(ConfigError, match=rf"^{section}\.{re.escape(name)}: "):
        config.check_names(smoke)
    if name in ("..", ".", ".hidden", "a/b"):  # the schema (and Snakemake's validate) refuse them as well
        with pytest.raises(ConfigError, match=rf"{section}: .*does not match"):
            config.validate_schema(smoke)


def test_a_task_named_dot_dot_is_refused_before_snakemake_touches_results(repo, tmp_path, smoke):
    """At eb2dbfa a task `..` beside typefaces prepared into results/data/.. = results/, and a rerun removed mlflow.db,
    the prepared data and every finished run."""
    (tmp_path / "results" / "runs").mkdir(parents=True)
    (tmp_path / "results" / "mlflow.db").write_text("precious")
    smoke["tasks"][".."] = dict(next(iter(smoke["tasks"].values())))
    smoke["tracking_uri"] = f"sqlite:///{tmp_path}/results/mlflow.db"
    rc, log = snakemake_dry_run(repo, tmp_path, smoke)
    assert rc != 0 and "tasks" in log and ".." in log, log[-2000:]
    assert (tmp_path / "results" / "mlflow.db").read_text() == "precious"


@pytest.mark.parametrize("given, message", [
    ("/", "a folder above the working directory"),
    (".", "is the working directory"),
    ("..", "a folder above the working directory"),
    ("results/..", "is the working directory"),
    ("../outside", "results_outside_workdir: true"),
])
def test_a_results_folder_that_is_not_a_subfolder_of_the_working_directory_is_refused(tmp_path, given, message):
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ConfigError, match=rf"^results: .*{message}"):
        config.check_results_folder({"results": given}, work)


def test_results_outside_the_working_directory_with_the_opt_in(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    assert config.check_results_folder({"results": "results/tuned"}, work) == work / "results" / "tuned"
    assert config.check_results_folder({"results": "../scratch", "results_outside_workdir": True}, work) == \
        tmp_path / "scratch"
    with pytest.raises(ConfigError, match="above the working directory"):  # never the folders above, opt-in or not
        config.check_results_folder({"results": "/", "results_outside_workdir": True}, work)
    config.validate_schema({"experiment": "e", "seeds": [0], "tasks": {"t": {"dataset": "typefaces"}},
                            "models": {"m": {"arch": "crnn", "modality": "vision"}}, "results_outside_workdir": True})


def test_the_check_config_command_refuses_results_slash(repo, tmp_path, smoke):
    smoke["results"] = "/"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(smoke))
    out = subprocess.run([sys.executable, "-m", "finebench", "check-config", str(path)], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode != 0 and "results: '/'" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_a_folder_is_never_replaced_outside_its_parent(tmp_path):
    """The guard at the point of deletion: atomic_dir(results/data/..) would replace results/ itself."""
    from finebench.files import atomic_dir

    (tmp_path / "results" / "data").mkdir(parents=True)
    (tmp_path / "results" / "mlflow.db").write_text("precious")
    with pytest.raises(FinebenchError, match="not inside"):
        with atomic_dir(tmp_path / "results" / "data" / ".."):
            pass
    assert (tmp_path / "results" / "mlflow.db").read_text() == "precious"


def test_clean_never_removes_a_folder_outside_the_working_directory(tmp_path):
    from finebench import workdir

    work, sibling = tmp_path / "work", tmp_path / "sibling"
    work.mkdir()
    sibling.mkdir()
    (sibling / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit, match="refusing to remove ../sibling"):
        workdir.clean(work, downloads="../sibling", cheap=False)
    assert (sibling / "keep.txt").read_text() == "mine"
    (work / "cache").symlink_to(sibling)  # a link inside the folder is removed as a link, its target kept
    workdir.clean(work, downloads="cache", cheap=False)
    assert not (work / "cache").exists() and (sibling / "keep.txt").is_file()


# --- 2. a damaged metrics.json -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["NaN", "null", '"abc"', "Infinity"])
def test_a_run_with_a_nan_or_null_metric_is_left_out_by_name_and_the_tables_are_written(tmp_path, value, capsys):
    rng = np.random.default_rng(0)
    files = write_classification_runs(tmp_path / "runs", {m: [(rng.random(40) < p).astype(float) for _ in range(3)]
                                                          for m, p in (("a", 0.8), ("b", 0.5))})
    damaged = files[1]
    damaged.write_text(damaged.read_text().replace(
        f'"test_accuracy": {json.loads(damaged.read_text())["test_accuracy"]}', f'"test_accuracy": {value}'))
    assert value in damaged.read_text()
    out = report.aggregate(files, tmp_path / "tables")
    board = out["classification"]["leaderboard"].set_index("model")
    assert board.loc["a", "n_seeds"] == 2 and board.loc["b", "n_seeds"] == 3
    md = (tmp_path / "tables" / "leaderboard.md").read_text()
    assert "Left out of every table" in md and str(damaged) in md and "test_accuracy is" in md
    assert f"{damaged}: test_accuracy is" in capsys.readouterr().err


@pytest.mark.parametrize("value", [None, float("nan")])
def test_a_null_or_nan_secondary_metric_is_shown_as_a_dash_never_nan(tmp_path, value):
    """A secondary metric may be null (top-5 with fewer than five classes: not measured); null or NaN in one seed
    makes the model's mean unknown — "—" — rather than a mean over fewer seeds or "nan"."""
    files = write_classification_runs(tmp_path / "runs", {"a": [np.ones(10), np.ones(10)], "b": [np.zeros(10)] * 2})
    m = json.loads(files[0].read_text())
    m["test_macro_f1"] = value
    files[0].write_text(json.dumps(m))
    out = report.aggregate(files, tmp_path / "tables")
    board = out["classification"]["leaderboard"].set_index("model")
    assert board.loc["a", "n_seeds"] == 2 and math.isnan(board.loc["a", "test_macro_f1_mean"])
    for name in ("leaderboard.md", "leaderboard.html", "costs.md", "families.md"):
        assert "nan" not in (tmp_path / "tables" / name).read_text().lower(), name
    row = next(line for line in (tmp_path / "tables" / "leaderboard.md").read_text().splitlines()
               if line.startswith("| ") and line.split("|")[2].strip() == "a")
    assert row.split("|")[11].strip() == "—"  # the macro-F1 column


def test_a_secondary_metric_that_is_not_a_number_leaves_the_run_out(tmp_path):
    files = write_classification_runs(tmp_path / "runs", {"a": [np.ones(10), np.ones(10)], "b": [np.zeros(10)] * 2})
    m = json.loads(files[0].read_text())
    m["test_macro_f1"] = "0.9"
    files[0].write_text(json.dumps(m))
    report.aggregate(files, tmp_path / "tables")
    assert 'test_macro_f1 is "0.9"' in (tmp_path / "tables" / "leaderboard.md").read_text()


def test_no_usable_metrics_file_is_an_error_naming_each(tmp_path):
    f = tmp_path / "metrics.json"
    f.write_text("[1, 2]")
    with pytest.raises(FinebenchError, match=rf"{f}: not a JSON object"):
        report.load_metrics([f])


# --- 4. degenerate statistics --------------------------------------------------------------------------------------


def test_one_test_example_gives_no_test_not_p_zero():
    """At eb2dbfa: 0/1 against 1/1 with one seed each gave p = 0 (a significant difference from one example)."""
    assert math.isnan(stats.paired_p(np.array([[1.0]]), np.array([[0.0]])))
    assert math.isnan(stats.paired_p(np.array([[1.0], [1.0], [0.0]]), np.array([[0.0], [0.0], [0.0]])))


def test_identical_scores_with_a_difference_give_no_test():
    assert math.isnan(stats.paired_p(np.ones((3, 20)), np.zeros((2, 20))))
    assert math.isnan(stats.welch_p(np.array([0.8, 0.8]), np.array([0.5, 0.5])))
    assert stats.welch_p(np.array([0.8, 0.8]), np.array([0.8, 0.8])) == 1.0
    assert stats.paired_p(np.ones((3, 20)), np.ones((2, 20))) == 1.0


def test_the_table_says_no_test_was_possible_and_claims_no_tie(tmp_path):
    from finebench.tasks import get

    files = write_classification_runs(tmp_path, {"a": [np.array([1.0])], "b": [np.array([0.0])]})
    board = report.leaderboard(report.load_metrics(files)).set_index("model")
    assert math.isnan(board.loc["b", "p_vs_best"]) and board.loc["b", "tie_test"] == "none"
    assert not board.loc["b", "tie_with_best"]
    md = get("classification").table_code.leaderboard_markdown(board.reset_index())
    assert "No test against the best model was possible for: b" in md
    assert "1 test example: no interval over the test sample" in md  # why these rows are seed-only (†)


def test_the_dagger_is_only_on_rows_without_usable_per_example_scores(tmp_path):
    from finebench.tasks import get

    rng = np.random.default_rng(1)
    files = write_classification_runs(tmp_path, {"a": [(rng.random(50) < 0.7).astype(float)],
                                                 "b": [(rng.random(50) < 0.6).astype(float)],
                                                 "c": [(rng.random(50) < 0.5).astype(float)]},
                                      without_predictions=("c",))
    md = get("classification").table_code.leaderboard_markdown(report.leaderboard(report.load_metrics(files)))
    rows = {line.split("|")[2].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "†" not in rows["a"] and "†" not in rows["b"] and "†" in rows["c"], md


# --- 7. summary runs collect their own task's plots ----------------------------------------------------------------


def test_the_summary_of_task_tf_does_not_collect_task_tf_bs_plots(tmp_path, experiment_file):
    from mlflow.tracking import MlflowClient

    from finebench.tracking import log_summaries

    files = []
    for task in ("tf", "tf_b"):
        for _, row in runs_frame({"a": [0.8, 0.9], "b": [0.5, 0.6]}, task=task).iterrows():
            run = tmp_path / "runs" / task / f"{row['model']}_{row['seed']}"
            run.mkdir(parents=True)
            (run / "metrics.json").write_text(json.dumps({**row.to_dict(), "mlflow_run_id": f"{task}{row['seed']}"}))
            files.append(run / "metrics.json")
    report.aggregate(files, tmp_path / "tables")
    (tmp_path / "plots").mkdir()
    for name in ("tf_pareto.png", "tf_b_pareto.png", "tf_b_learning_curves.png", "tf_evp.png"):
        (tmp_path / "plots" / name).write_bytes(b"\x89PNG")
    ids = log_summaries(experiment_file, tmp_path / "tables", tmp_path / "plots", tmp_path / "s.json")["summary_runs"]
    client = MlflowClient(json.loads(experiment_file.read_text())["tracking_uri"])

    def pngs(run_id):
        return sorted(a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(run_id, "plots"))

    assert pngs(ids["tf"]) == ["tf_evp.png", "tf_pareto.png"]
    assert pngs(ids["tf_b"]) == ["tf_b_learning_curves.png", "tf_b_pareto.png"]


# --- 9. the config: alias bombs, NaN bounds, huge budgets and seeds ------------------------------------------------

BOMB = "".join(["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"] +
               [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")])


def test_a_yaml_alias_bomb_is_refused_in_seconds(tmp_path, repo, smoke):
    """Nine levels of aliases: 9⁹ ≈ 3.9e8 values; at eb2dbfa check-config and snakemake hung on it."""
    path = tmp_path / "bomb.yaml"
    path.write_text(yaml.safe_dump(smoke) + BOMB.replace("a:", "x_a:", 1))
    start = time.monotonic()
    with pytest.raises(ConfigError, match=rf"{path}: its YAML aliases .* more than 100,000 values"):
        config.load(path)
    assert time.monotonic() - start < 5
    out = subprocess.run([sys.executable, "-m", "finebench", "check-config", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "YAML aliases" in out.stderr and "Traceback" not in out.stderr, out.stderr
    bomb = yaml.safe_dump(smoke) + "\n".join(f"  {line}" for line in ["x_bomb:", *BOMB.splitlines()])
    rc, log = snakemake_dry_run(repo, tmp_path, bomb.replace("\n  x_bomb:", "\nx_bomb:"), timeout=120)
    assert rc != 0 and "YAML aliases" in log, log[-2000:]


def test_a_config_that_contains_itself_is_refused():
    with pytest.raises(ConfigError, match="contain itself"):
        config.load_yaml("a: &a [1, *a]\n")


def test_a_nan_tuning_bound_is_refused_before_any_trial(smoke, tmp_path):
    smoke["tuning"] = {"budget": 2, "spaces": {"cnn": {"lr": {"loguniform": [float("nan"), 0.01]}}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(smoke))
    assert ".nan" in path.read_text()
    with pytest.raises(ConfigError, match=r"tuning\.spaces\.cnn\.lr\.loguniform: \[low, high\], two finite numbers"):
        config.load(path)


@pytest.mark.parametrize("where", ["tuning", "model"])
def test_a_huge_tuning_budget_is_refused_with_the_limit(smoke, where):
    smoke["tuning"] = {"budget": 2}
    if where == "tuning":
        smoke["tuning"]["budget"] = 2_000_000_000
        with pytest.raises(ConfigError, match=r"tuning\.budget: 2000000000 is greater than the maximum of 1000"):
            config.validate_schema(smoke)
    else:
        model = next(iter(smoke["models"]))
        smoke["models"][model]["tuning"] = {"budget": 2_000_000_000}
        with pytest.raises(ConfigError, match=rf"models\.{model}\.tuning\.budget: 2000000000 — a whole number of "
                                              r"trials, 1 to 1000"):
            config.check_tuning(config.with_defaults(smoke))


def test_a_seed_beyond_two_to_the_32_is_refused_by_the_schema(smoke):
    smoke["seeds"] = [0, 2 ** 32]
    with pytest.raises(ConfigError, match=r"seeds\.1: 4294967296 is greater than the maximum of 4294967295"):
        config.validate_schema(smoke)


@pytest.mark.parametrize("name", ["a/b", "a\\b", "tab\there"])
def test_an_experiment_name_with_a_separator_is_refused(smoke, name):
    smoke["experiment"] = name
    with pytest.raises(ConfigError, match=r"experiment: .* does not match"):
        config.validate_schema(smoke)

