"""A toy task type registered from the test suite — regression, scored by MAE (lower is better) — to show that a
task type is one module: the trainer, the report builder, the MLflow summaries and the workflow's rules learn of it
from its declaration alone (tests/test_task_types.py). docs/development/add-a-task-type.md walks through it.

What it needed, all here: a TaskType (metrics, objective, tables, run files, table files, plot kinds), an objective
(loss, evaluate, selection_key, epoch_fields, best_fields, headline, final; its own loader), its tables (a Tables
subclass: CSV columns, headings and prose, board fields, plots; the one renderer does the rest), a dataset source of
its task type and an architecture that solves it. Importing it registers all of them; FINEBENCH_TASK_TYPES=
toy_regression makes every finebench process (Snakemake's and its jobs') import it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from finebench import data, models, tasks
from finebench.tasks.objective import Objective
from finebench.tasks.tables import TEST_COLUMNS, Tables, params_column, stat_columns, train_seconds_column

FEATURES = 8


# ---------------------------------------------------------------------------------------------------------------
# The declaration

TASK = tasks.register(tasks.TaskType(
    name="regression",
    title="regression",
    metrics=(tasks.Metric("test_mae", "MAE", "", higher_is_better=False, fmt=".3f", primary=True),
             tasks.Metric("test_rmse", "RMSE", "", higher_is_better=False, fmt=".3f")),
    objective="toy_regression:Regression",
    tables="toy_regression:RegressionTables",
    run_files=("predictions.csv",),
    table_files=("leaderboard_regression.csv", "families_regression.csv"),
    plot_kinds=("learning_curves",),
    # a training key only its tasks read: in the config schema once it is registered (finebench.config)
    training={"huber_delta": {"type": ["number", "null"], "exclusiveMinimum": 0,
                              "description": "Regression: the Huber loss with this delta instead of MSE."}},
))


# ---------------------------------------------------------------------------------------------------------------
# Its data: y = w . x + noise, in the task type's own prepared form (x, y float32)

def build_lines(work: Path, opt: dict) -> dict:
    rng = np.random.default_rng(opt["seed"])
    w = rng.normal(size=FEATURES).astype(np.float32)
    splits = {}
    for split, n in (("train", opt["n_train"]), ("val", opt["n_eval"]), ("test", opt["n_eval"])):
        x = rng.normal(size=(n, FEATURES)).astype(np.float32)
        y = (x @ w + opt["noise"] * rng.normal(size=n)).astype(np.float32)
        np.save(work / f"{split}_x.npy", x)
        np.save(work / f"{split}_y.npy", y)
        splits[split] = {"n": n}
    return {"arrays": None, "splits": splits,
            "manifest": {"classes": [], "input": {"kind": "vector", "features": FEATURES}}}


data.register(data.DatasetSource(name="toy_lines", modality="vision", task_type="regression",
                                 description="toy regression: y = w.x + noise (tests only)",
                                 defaults={"n_train": 256, "n_eval": 64, "noise": 0.1, "seed": 0}, build=build_lines))


# ---------------------------------------------------------------------------------------------------------------
# Its models

def toy_linear(input_info: dict, num_classes: int):
    import torch

    return torch.nn.Linear(input_info["features"], 1)


def toy_mlp(input_info: dict, num_classes: int, hidden: int = 32):
    import torch

    return torch.nn.Sequential(torch.nn.Linear(input_info["features"], hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, 1))


models.register("toy_linear", "other", ("vision",), "linear regression (toy)", task_type="regression")(toy_linear)
models.register("toy_mlp", "other", ("vision",), "two-layer MLP regression (toy)", task_type="regression")(toy_mlp)


# ---------------------------------------------------------------------------------------------------------------
# Its objective

class Loader:
    def __init__(self, folder, split, batch_size, device, generator=None, max_batches=None):
        import torch

        self.x = torch.from_numpy(np.load(Path(folder) / f"{split}_x.npy")).to(device)
        self.y = torch.from_numpy(np.load(Path(folder) / f"{split}_y.npy")).to(device)
        self.batch_size, self.generator, self.max_batches = batch_size, generator, max_batches
        self.data_seconds = 0.0

    def __len__(self):
        n = math.ceil(len(self.y) / self.batch_size)
        return min(n, self.max_batches) if self.max_batches else n

    def __iter__(self):
        import torch

        order = torch.randperm(len(self.y), generator=self.generator) if self.generator is not None else \
            torch.arange(len(self.y))
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]


class Regression(Objective):
    name = "regression"

    def loader(self, job, split: str, train: bool = False):
        return Loader(job.data.path, split, job.t["batch_size"] if train else job.t["eval_batch_size"], job.dev,
                      generator=job.generator if train else None, max_batches=job.steps_per_epoch if train else None)

    def loss(self, out, y, t: dict):
        import torch.nn.functional as F

        if t.get("huber_delta"):
            return F.huber_loss(out.float().squeeze(-1), y, delta=t["huber_delta"])
        return F.mse_loss(out.float().squeeze(-1), y)

    def evaluate(self, model, loader, autocast, num_classes: int = 0) -> dict:
        import torch

        model.eval()
        preds, ys = [], []
        with torch.no_grad():
            for x, y in loader:
                with autocast():
                    preds.append(model(x).float().squeeze(-1).cpu())
                ys.append(y.cpu())
        p, y = torch.cat(preds).numpy(), torch.cat(ys).numpy()
        err = p - y
        return {"loss": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err))),
                "rmse": float(np.sqrt(np.mean(err ** 2))), "pred": p, "y": y}

    def selection_key(self, ev: dict) -> tuple:
        return (-ev["mae"],)  # the trainer keeps the largest key: the lowest validation MAE

    def epoch_fields(self, ev: dict) -> dict:
        return {"val_loss": ev["loss"], "val_mae": ev["mae"]}

    def best_fields(self, key: tuple) -> dict:
        return {"best_val_mae": -key[0]}

    def headline(self, result: dict) -> str:
        return f"test MAE {result['test_mae']:.4f}"

    def final(self, ev: dict, data, out_dir: Path, title: str, more: dict) -> dict:
        pd.DataFrame({"y": ev["y"], "prediction": ev["pred"]}).to_csv(out_dir / "predictions.csv", index=False)
        return {"task_type": "regression", "test_mae": ev["mae"], "test_rmse": ev["rmse"], "test_loss": ev["loss"],
                "n_test": int(len(ev["y"]))}


# ---------------------------------------------------------------------------------------------------------------
# Its tables (finebench.tasks.tables.Tables: the one renderer writes the leaderboard, costs and families from these)

class RegressionTables(Tables):
    """What the renderer cannot know: its CSV columns, headings and prose, its fields, its plots."""

    BOARD_COLUMNS = ["task", "modality", "model", "family", "arch", "n_seeds", "seeds", *stat_columns(TASK),
                     "params", "train_seconds_mean", "device_name", *TEST_COLUMNS]
    FAMILY_COLUMNS = ["task", "modality", "family", "n_models", "best_model", "best_test_mae_mean",
                      "best_test_mae_ci95", "best_test_mae_ci95_comb", "best_n_seeds", "family_mean_test_mae",
                      "best_is_task_best", "best_tie_with_task_best"]
    REFERENCE_COLUMNS = ["dataset", "model", "family", "mae", "source"]
    titles = {"leaderboard": "Regression", "costs": "Cost of each regression model",
              "families": "Regression: best model of each family per task"}
    intros = {"leaderboard": "MAE (lower is better): mean over seeds ± the 95 % half-width over seeds and test "
                             "examples; **bold**: the best; ≈: tied with it by the paired test.",
              "costs": "Parameters and training time per run.", "families": "MAE of each family's best model."}
    family_headers = ("best MAE", "family mean MAE")

    def board_fields(self, g: pd.DataFrame) -> dict:
        return {"modality": g["modality"].iloc[0], "family": g["family"].iloc[0], "arch": g["arch"].iloc[0],
                "params": int(g["n_params"].iloc[0]), "train_seconds_mean": g["train_seconds"].mean()}

    def example_scores(self, runs: pd.DataFrame) -> dict:
        """Each test example's absolute error (predictions.csv), whose mean is the run's MAE: the leaderboard's
        interval over seeds and test examples and its paired test."""
        out = {}
        for _, r in runs.iterrows():
            p = pd.read_csv(Path(r["metrics_file"]).parent / "predictions.csv")
            out[r["task"], r["model"], r["seed"]] = (p["prediction"] - p["y"]).abs().to_numpy(float)
        return out

    def heading(self, g: pd.DataFrame) -> str:
        return f"{g['task'].iloc[0]} (regression, {len(g)} models)"

    def board_columns(self) -> list:
        return [params_column(), train_seconds_column()]

    def cost_columns(self) -> list:
        return [train_seconds_column(), self.primary_column("MAE")]

    def plots(self, runs, board, fam, out: Path) -> list[Path]:
        from finebench import plots as drawing

        return drawing.draw_per_task(board["task"].unique(), TASK.plot_kinds, lambda task: {
            "learning_curves": lambda p: drawing.per_epoch_curves(runs, task, p, "val_mae", 1, "validation MAE",
                                                                  f"{task}: validation MAE per epoch")}, out)


if __name__ == "__main__":
    print(json.dumps({"task_type": TASK.name, "rule": TASK.rule}))
