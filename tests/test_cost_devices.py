"""Cost columns measured on one device per table, and one GPU per run (#33 items 7, 9): a table never compares
timings, throughput or memory taken on different hardware, and gpus_per_job above 1 is refused before any job."""

import json

import pandas as pd
import pytest
import yaml

from finebench import config, report
from finebench.errors import ConfigError
from test_report import runs_frame  # noqa: E402

H100, A100 = "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"


def write_runs(root, devices: dict[str, list[str]]):
    files = []
    frame = runs_frame({m: [0.8 - 0.1 * i] * len(d) for i, (m, d) in enumerate(devices.items())})
    for _, r in frame.iterrows():
        run = root / r["model"] / f"seed{r['seed']}"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({**r.to_dict(),
                                                      "test_accuracy": r["test_accuracy"] + 0.01 * r["seed"],
                                                      "device": "cuda", "device_name": devices[r["model"]][r["seed"]]}))
        files.append(run / "metrics.json")
    return files


def test_one_device_is_named_above_the_cost_table(tmp_path):
    report.aggregate(write_runs(tmp_path / "runs", {"a": [H100, H100], "b": [H100, H100]}), tmp_path / "tables")
    costs = (tmp_path / "tables" / "costs.md").read_text()
    assert f"Measured on: {H100}." in costs and costs.count("| model ") == 1
    assert list(pd.read_csv(tmp_path / "tables" / "leaderboard.csv")["device_name"]) == [H100, H100]
    assert f"Measured on: {H100}." in (tmp_path / "tables" / "leaderboard.html").read_text()


def test_costs_measured_on_different_devices_are_split_and_a_mixed_model_stands_apart(tmp_path):
    files = write_runs(tmp_path / "runs", {"a": [H100, H100], "b": [A100, A100], "c": [H100, A100]})
    out = report.aggregate(files, tmp_path / "tables")
    costs = (tmp_path / "tables" / "costs.md").read_text()
    sections = costs.split("Measured on: ")[1:]
    assert len(sections) == 2 and costs.count("| model ") == 3  # a table per device, and one for the mixed model
    tables = {s.split(".\n", 1)[0]: s for s in sections}
    assert "| a " in tables[H100].split("Seeds timed")[0] and "| b " not in tables[H100].split("Seeds timed")[0]
    assert "| b " in tables[A100] and "| a " not in tables[A100].split("Seeds timed")[0]
    mixed = costs.split("Seeds timed on several devices")[1]
    assert f"({A100} + {H100})" in mixed and "| c " in mixed and "| a " not in mixed
    board = out["classification"]["leaderboard"].set_index("model")
    assert board.loc["c", "device_name"] == f"{A100} + {H100}"


def test_runs_of_an_older_version_say_the_device_was_not_recorded(tmp_path):
    files = write_runs(tmp_path / "runs", {"a": [H100, H100]})
    for f in files:
        m = json.loads(f.read_text())
        del m["device_name"]
        f.write_text(json.dumps(m))
    report.aggregate(files, tmp_path / "tables")
    assert "Measured on: not recorded" in (tmp_path / "tables" / "costs.md").read_text()


def test_more_than_one_gpu_per_job_is_refused_before_any_job(repo):
    """A run trains on one GPU: gpus_per_job: 2 asked Slurm for two and left one idle."""
    smoke = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    smoke["gpus_per_job"] = 2
    with pytest.raises(ConfigError, match=r"^gpus_per_job: 2 — a training run uses one GPU"):
        config.check(smoke)
    smoke["gpus_per_job"] = 1
    config.check(smoke)  # one is fine
