"""The one MLflow wrapper.

- :func:`init_experiment` runs once per workflow (a Snakemake ``localrule``) *before* any training job: it creates or
  upgrades the store and the experiment (with an explicit artifact location) and records the experiment id in a small
  JSON file that every training job reads. Parallel jobs never race to create the store, and every run is filed with an
  explicit ``experiment_id`` — never under "Default".
- :class:`Run` wraps one training run: tags, params, per-epoch and final metrics, artifacts. Leaving the ``with`` block
  by an exception ends the run FAILED (KILLED for Ctrl-C / SIGTERM); it never stays RUNNING.
- **One current run per (task, model, seed).** Every run carries ``finebench.run_key`` = its name and
  ``finebench.superseded``. A new run of a key tags every earlier run of that key ``finebench.superseded=true`` and
  ends any still marked RUNNING as KILLED (its process died: Snakemake runs one job per output at a time); a resumed
  job continues its own run. So the MLflow UI filter ``tags.`finebench.superseded` = 'false'`` shows exactly the runs
  the tables show, and :func:`end_ghost_runs` (called at the end of the pipeline) leaves no run RUNNING.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

from finebench.errors import FinebenchError
from finebench.files import write_json_atomic

FAILED, KILLED, FINISHED, RUNNING = "FAILED", "KILLED", "FINISHED", "RUNNING"
RUN_KEY, SUPERSEDED = "finebench.run_key", "finebench.superseded"


def _client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    from finebench.server import use_credentials

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    use_credentials(tracking_uri)  # a tracking server with authentication: its credentials file, if there is one
    return MlflowClient(tracking_uri=tracking_uri)


def retry(fn, *args, attempts: int = 8, **kwargs):
    """Call an MLflow client method, retrying briefly when a shared sqlite store is momentarily locked."""
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # mlflow wraps sqlalchemy's OperationalError in MlflowException
            if "locked" not in str(exc).lower() or i == attempts - 1:
                raise
            time.sleep(0.2 * 2**i)


def init_experiment(tracking_uri: str, experiment: str, artifact_root: str | Path, out_file: str | Path) -> str:
    client = _client(tracking_uri)
    try:
        exp = client.get_experiment_by_name(experiment)
    except Exception as exc:  # the first request: say how to authenticate rather than MLflow's "error code 401"
        if "error code 401" in str(exc):
            from finebench.server import unauthorized_hint

            raise FinebenchError(f"tracking_uri: {unauthorized_hint(tracking_uri)}") from None
        raise
    if exp is None and tracking_uri.startswith(("http://", "https://")):
        # a tracking server stores the artifacts itself (mlflow server --artifacts-destination): jobs upload them over
        # HTTP, so nodes without the submit host's file system can log them
        exp_id = client.create_experiment(experiment)
    elif exp is None:
        location = Path(artifact_root).resolve()
        location.mkdir(parents=True, exist_ok=True)
        exp_id = client.create_experiment(experiment, artifact_location=location.as_uri())
    elif exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
        exp_id = exp.experiment_id
    else:
        exp_id = exp.experiment_id
    # the description the UI shows above the runs table (MLflow keeps it in this tag)
    retry(client.set_experiment_tag, exp_id, "mlflow.note.content", EXPERIMENT_DESCRIPTION)
    write_json_atomic(out_file, {"tracking_uri": tracking_uri, "experiment": experiment, "experiment_id": exp_id})
    return exp_id


EXPERIMENT_DESCRIPTION = """\
finebench runs: one run per (task, model, seed), named `task/model/seedN`, with the resolved spec as parameters,
per-epoch metrics and the final test metrics, tags for the family, the dataset and what produced it (`env.*`).
A rerun that changes a run files a new one and tags the old one `finebench.superseded = true`; the current runs are
`tags.finebench.superseded = 'false'`. Runs named `task/summary` (tag `finebench.summary = true`) hold each task's
comparison table and plots: the answer, beside the runs it is computed from."""
CURRENT_RUNS = "tags.`finebench.superseded` = 'false'"


# The runs table's view that the workflow files with the summaries (MLflow >= 3.15 keeps a shared view of the runs
# table as the experiment tag mlflow.sharedViewState.<key>, opened by the address's viewStateShareKey=<key>)
VIEW_KEY = "finebench"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"


def runs_view(metrics: list[str]) -> dict:
    """The runs table as finebench opens it: current runs only, each with its task, model, family and seed and the
    primary test metric of every task type that ran (``metrics``), beside the Duration and Source columns."""
    return {"searchFilter": CURRENT_RUNS, "orderByKey": "attributes.start_time", "orderByAsc": False,
            "selectedColumns": [*(f"tags.`{t}`" for t in ("task", "model", "family", "seed")),
                                *(f"metrics.`{m}`" for m in metrics), "attributes.`Duration`", "attributes.`Source`"]}


def share_view(client, experiment_id: str, metrics: list[str]) -> None:
    """File :func:`runs_view` as the experiment's shared view (only when it changed)."""
    value = json.dumps(runs_view(metrics), separators=(",", ":"))
    if client.get_experiment(experiment_id).tags.get(VIEW_TAG) != value:
        retry(client.set_experiment_tag, experiment_id, VIEW_TAG, value)


def ui_links(tracking_uri: str, base: str) -> list[str]:
    """One line per experiment of the store: its name, how many current runs it has, and the UI address that opens
    on its runs table showing only current runs (MLflow 3's experiment page opens on a GenAI overview otherwise) —
    with finebench's shared view, where the workflow filed one, which adds the primary metrics' columns."""
    from urllib.parse import quote

    client = _client(tracking_uri)
    lines = []
    for exp in client.search_experiments():
        runs = client.search_runs([exp.experiment_id], CURRENT_RUNS, max_results=50000)
        if not runs:
            continue
        query = (f"viewStateShareKey={VIEW_KEY}" if VIEW_TAG in exp.tags else f"searchFilter={quote(CURRENT_RUNS)}")
        lines.append(f"{exp.name} (current runs: {len(runs)}): {base.rstrip('/')}/#/experiments/{exp.experiment_id}"
                     f"/runs?{query}")
    return lines


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def git_dirty() -> bool | None:
    """Whether the finebench checkout has uncommitted changes to tracked files (None outside a git checkout)."""
    try:
        return bool(subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent, timeout=30,
        ).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None


# What produced a run, recorded in its metrics.json ("environment") and as MLflow tags (env.<name>)
PROVENANCE_PACKAGES = ("finebench", "torch", "torchvision", "torchaudio", "timm", "transformers", "mlflow",
                       "snakemake", "numpy")


def provenance() -> dict:
    """The installed versions of the packages a result depends on, Python, CUDA and cuDNN (where a GPU is used), the
    git commit and whether the checkout was dirty."""
    import platform
    from importlib import metadata

    import torch

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    cuda = torch.cuda.is_available()
    return {**{name: version(name) for name in PROVENANCE_PACKAGES}, "python": platform.python_version(),
            "cuda": torch.version.cuda if cuda else None,
            "cudnn": torch.backends.cudnn.version() if cuda else None,
            "git_commit": git_commit(), "git_dirty": git_dirty()}


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, (list, tuple)) else v
    return out


def run_name(spec: dict) -> str:
    """``task/model/seedN``; a tuning trial (finebench.tuning) ``task/model/trialK``."""
    if spec.get("trial") is not None:
        return f"{spec['task']}/{spec['model']}/trial{spec['trial']}"
    return f"{spec['task']}/{spec['model']}/seed{spec['seed']}"


class Run:
    """One MLflow run named ``{task}/{model}/seed{seed}``; use as a context manager. ``run_id``: continue that run
    (a resumed job) instead of creating one."""

    def __init__(self, experiment_file: str | Path, spec: dict, tags: dict | None = None, run_id: str | None = None):
        path = Path(experiment_file)
        if not path.is_file():
            raise FinebenchError(f"{path}: missing — run the init_tracking step first "
                                 f"(python -m finebench init-tracking)")
        info = json.loads(path.read_text())
        self.client = _client(info["tracking_uri"])
        self.experiment_id = info["experiment_id"]
        self.spec = spec
        self.name = run_name(spec)
        self.tags = {
            **{k: str(spec[k]) for k in ("task", "dataset", "modality", "family", "model", "arch", "seed")},
            **{k: str(v) for k, v in (tags or {}).items()},
            RUN_KEY: self.name, SUPERSEDED: "false",
        }
        commit = git_commit()
        if commit:
            self.tags["mlflow.source.git.commit"] = commit
        self.run_id: str | None = None
        self.resume_id = run_id

    def _reopen(self, run_id: str) -> bool:
        try:
            run = retry(self.client.get_run, run_id)
        except Exception:  # deleted, or another store: start a new run
            return False
        if run.info.experiment_id != self.experiment_id or run.info.lifecycle_stage != "active":
            return False
        retry(self.client.update_run, run_id, status=RUNNING)
        return True

    def __enter__(self) -> "Run":
        if self.resume_id and self._reopen(self.resume_id):
            self.run_id = self.resume_id
        else:
            run = retry(self.client.create_run, self.experiment_id, run_name=self.name, tags=self.tags)
            self.run_id = run.info.run_id
            from mlflow.entities import Param

            params = [Param(k, str(v)[:6000]) for k, v in flatten(self.spec).items()]
            for i in range(0, len(params), 100):
                retry(self.client.log_batch, self.run_id, params=params[i : i + 100])
        self.supersede_others()
        return self

    def supersede_others(self) -> None:
        """Mark every other run of this (task, model, seed) superseded; end those left RUNNING by a dead process."""
        others = retry(self.client.search_runs, [self.experiment_id],
                       filter_string=f"attributes.run_name = '{self.name}'", max_results=1000)
        for r in others:
            if r.info.run_id == self.run_id or r.data.tags.get("finebench.summary") == "true":
                continue
            if r.info.status == RUNNING:
                retry(self.client.set_terminated, r.info.run_id, KILLED)
            if r.data.tags.get(SUPERSEDED) != "true":
                retry(self.client.set_tag, r.info.run_id, SUPERSEDED, "true")

    def set_tags(self, tags: dict) -> None:
        for k, v in tags.items():
            retry(self.client.set_tag, self.run_id, k, str(v))

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items() if v is not None]
        if batch:
            retry(self.client.log_batch, self.run_id, metrics=batch)

    def log_artifacts(self, directory: str | Path, exclude: tuple[str, ...] = ()) -> None:
        for f in sorted(Path(directory).iterdir()):
            if f.is_file() and f.name not in exclude and ".tmp" not in f.name:
                retry(self.client.log_artifact, self.run_id, str(f))

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:  # never swallows the exception
        if self.run_id is None:
            return False
        if exc_type is None:
            status = FINISHED
        elif issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            status = KILLED
        else:
            status = FAILED
            try:
                retry(self.client.set_tag, self.run_id, "error", f"{exc_type.__name__}: {exc}"[:5000])
            except Exception:
                pass
        try:
            retry(self.client.set_terminated, self.run_id, status)
        except Exception as store_exc:  # e.g. its store is on the full disk too: the job's own error is the one to see
            if exc_type is None:
                raise
            print(f"[finebench] could not end MLflow run {self.run_id} as {status} ({type(store_exc).__name__}: "
                  f"{str(store_exc)[:300]}); the next run of {self.name} ends it KILLED", file=sys.stderr, flush=True)
        return False


def end_ghost_runs(client, experiment_id: str, current: dict[str, str]) -> list[str]:
    """End runs still RUNNING whose (task, model, seed) has a finished current run (``current``: run name -> the
    run id in its metrics.json): KILLED and superseded. Returns the ids ended."""
    ended = []
    for r in retry(client.search_runs, [experiment_id], filter_string=f"attributes.status = '{RUNNING}'",
                   max_results=5000):
        name = r.info.run_name
        if name in current and current[name] != r.info.run_id:
            retry(client.set_terminated, r.info.run_id, KILLED)
            retry(client.set_tag, r.info.run_id, SUPERSEDED, "true")
            ended.append(r.info.run_id)
    return ended


def log_tuning_parent(experiment_file: str | Path, selected: dict) -> str:
    """The MLflow parent run ``{task}/{model}/tuning`` of a tuning (finebench.tuning.select): its space, budget and
    chosen values as params, the best validation score and the expected-best curve (``evp_mean`` / ``evp_std`` at
    step n) as metrics; every trial run becomes its nested child (tag ``mlflow.parentRunId``). The same selection
    keeps its current parent; another files a new one and supersedes the earlier. Returns the parent's run id."""
    from mlflow.entities import Metric, Param

    info = json.loads(Path(experiment_file).read_text())
    client = _client(info["tracking_uri"])
    name = f"{selected['task']}/{selected['model']}/tuning"

    def log(rid):
        ident = selected["identity"]
        params = [Param("budget", str(ident["budget"])), Param("sampler", ident["sampler"]),
                  Param("seed", str(ident["seed"])), Param("space", json.dumps(ident["space"])[:6000]),
                  *(Param(f"chosen.{k}", str(v)) for k, v in selected["values"].items())]
        now = int(time.time() * 1000)
        metrics = [Metric("best_val_score", selected["val_score"], now, 0),
                   *(Metric("evp_mean", e["mean"], now, e["n"]) for e in selected["evp"]),
                   *(Metric("evp_std", e["std"], now, e["n"]) for e in selected["evp"]),
                   *(Metric("trial_val_score", t["val_score"], now, t["trial"]) for t in selected["trials"]
                     if t["val_score"] is not None)]
        retry(client.log_batch, rid, params=params, metrics=metrics)
        retry(client.log_text, rid, json.dumps(selected, indent=1), "selected.json")

    rid = file_once(client, info["experiment_id"], f"attributes.run_name = '{name}'", name,
                    {"task": selected["task"], "model": selected["model"], "family": selected["family"],
                     "finebench.tuning": "true", "finebench.chosen_trial": str(selected["trial"]), RUN_KEY: name,
                     **{f"tuned.{k}": str(v) for k, v in selected["values"].items()}},
                    hashlib.sha256(json.dumps(selected, sort_keys=True).encode()).hexdigest(), log)
    for t in selected["trials"]:  # nested under it in the UI (MLflow's convention for a search)
        if t.get("mlflow_run_id"):
            try:
                retry(client.set_tag, t["mlflow_run_id"], "mlflow.parentRunId", rid)
            except Exception as exc:  # a trial run deleted from the store: nothing to nest
                print(f"[finebench] {name}: trial {t['trial']}'s run {t['mlflow_run_id']} not tagged ({exc})",
                      file=sys.stderr)
    supersede_stale_trials(client, info["experiment_id"], selected)
    return rid


def file_once(client, experiment_id: str, search: str, name: str, tags: dict, digest: str, log) -> str:
    """A run finebench derives from others (a task's summary, a tuning's parent), filed once per content: the
    current FINISHED run that ``search`` finds with this ``digest`` is kept; else a new run ``name`` with ``tags`` is
    created, ``log(run_id)`` fills it (FAILED if it raises) and it ends FINISHED. Every other run found is marked
    superseded. Returns the current run's id."""
    old = retry(client.search_runs, [experiment_id], filter_string=search, max_results=1000)
    same = [r for r in old if r.data.tags.get(SUMMARY_DIGEST) == digest and r.info.status == FINISHED
            and r.data.tags.get(SUPERSEDED) != "true"]
    if same:
        rid = same[0].info.run_id
    else:
        rid = retry(client.create_run, experiment_id, run_name=name,
                    tags={**tags, SUPERSEDED: "false", SUMMARY_DIGEST: digest}).info.run_id
        try:
            log(rid)
            retry(client.set_terminated, rid, FINISHED)
        except BaseException:
            retry(client.set_terminated, rid, FAILED)
            raise
    _supersede(client, [r for r in old if r.info.run_id != rid])  # kept, marked: the UI's current view omits them
    return rid


def supersede_stale_trials(client, experiment_id: str, selected: dict) -> list[str]:
    """Make the trial runs of a (task, model) the selection's: a trial run beyond its budget (one lowered from 4 to
    3 leaves ``trial3``) or other than the run the selection holds for its trial (a child of an earlier parent) is
    marked superseded; a run the selection holds is current again (raised back to 4, ``trial3`` is kept, not
    retrained). The UI's current-runs filter then shows exactly the trials ``tuning.csv`` holds. Returns the ids
    marked superseded."""
    import re

    task, model = selected["task"], selected["model"]
    named = re.compile(rf"{re.escape(task)}/{re.escape(model)}/trial(\d+)")
    held = {t["trial"]: t["mlflow_run_id"] for t in selected["trials"] if t.get("mlflow_run_id")}
    # LIKE narrows the search (its `_` matches any character: the exact name is matched here)
    runs = retry(client.search_runs, [experiment_id],
                 filter_string=f"attributes.run_name LIKE '{task}/{model}/trial%'", max_results=5000)
    stale = []
    for r in runs:
        m = named.fullmatch(r.info.run_name or "")
        if m is None or r.data.tags.get("finebench.summary") == "true":
            continue
        k = int(m.group(1))
        if k >= selected["budget"] or (k in held and held[k] != r.info.run_id):
            if r.data.tags.get(SUPERSEDED) != "true":
                retry(client.set_tag, r.info.run_id, SUPERSEDED, "true")
                stale.append(r.info.run_id)
        elif held.get(k) == r.info.run_id and r.data.tags.get(SUPERSEDED) == "true":
            retry(client.set_tag, r.info.run_id, SUPERSEDED, "false")
    return stale


SUMMARY_DIGEST = "finebench.summary_sha256"  # of the tables a summary run holds


def _supersede(client, runs) -> None:
    for r in runs:
        if r.data.tags.get(SUPERSEDED) != "true":
            retry(client.set_tag, r.info.run_id, SUPERSEDED, "true")


def summary_description(task: str, best, tables_dir: Path) -> str:
    """A summary run's description (the UI shows it on the run's page): the task's best model, then the verdict
    across tasks from families_summary.csv — each family's mean tie-aware rank over N tasks, and whether N tasks can
    decide a pair at all (finebench.verdict)."""
    import pandas as pd

    from finebench.verdict import MIN_TASKS, smallest_sign_p

    text = f"**{task}**: best model {best['model']} ({best['family']})."
    path = tables_dir / "families_summary.csv"
    if not path.is_file():
        return text
    summary = pd.read_csv(path)
    summary = summary[summary["members"] == "all"] if "members" in summary else summary
    if summary.empty:
        return text
    n = summary["task"].nunique()
    tasks = f"{n} task{'' if n == 1 else 's'}"
    ranks = summary.groupby("family")["rank"].mean().sort_values()
    mine = summary[summary["task"] == task].sort_values("rank")
    text += (" Family ranks here (tied families share one): "
             + ", ".join(f"{r['family']} {r['rank']:g}" for _, r in mine.iterrows()) + "." if len(mine) else "")
    text += (f" Across the run's {tasks}, mean rank: " + ", ".join(f"{f} {r:.2f}" for f, r in ranks.items()) + ".")
    if n < MIN_TASKS:
        text += (f" With {tasks} no pair of families can be declared different at 0.05 (the exact sign test's "
                 f"smallest p is {smallest_sign_p(n):.4g}).")
    return text + " All of it: all_tasks/families_summary.md."


def log_summaries(experiment_file: str | Path, tables_dir: str | Path, plots_dir: str | Path,
                  out_file: str | Path) -> dict:
    """One summary run per task (``{task}/summary``, tag ``finebench.summary=true``) holding the task's tables and
    plots, so the MLflow UI user finds the answer beside the runs. Unchanged tables keep the task's current summary
    run; changed ones file a new one and mark the earlier ones superseded (``finebench.superseded``), as for runs."""
    import pandas as pd

    from finebench.report import of_type
    from finebench.tasks import TASK_TYPES

    kinds = {kind for tt in TASK_TYPES.values() for kind in tt.plot_kinds} | {"evp"}  # evp: finebench.tuning

    info = json.loads(Path(experiment_file).read_text())
    client = _client(info["tracking_uri"])
    tables_dir, plots_dir = Path(tables_dir), Path(plots_dir)
    runs = pd.read_csv(tables_dir / "runs.csv")
    # each task type's board (its first table file), scored by its primary metric; its tables module says which
    # task's plots show a table task (a task scored on several test sets: the first set's summary holds them)
    boards = []
    for tt in TASK_TYPES.values():
        board = pd.read_csv(tables_dir / tt.table_files[0])
        mine = of_type(runs, tt.name)
        if not board.empty:

            def plotted_name(name, code=tt.table_code, r=mine):
                return code.plotted_as(name, r)

            boards.append((board, f"{tt.primary.name}_mean", plotted_name))
    ids = {}
    for task, g, score, plotted_as in ((task, g, score, p) for board, score, p in boards
                                       for task, g in board.groupby("task", sort=False)):
        files = [tables_dir / f for f in ("leaderboard.md", "leaderboard.html", "families.md", "ranks.md",
                                          "families_summary.md")
                 if (tables_dir / f).is_file()]
        plotted = plotted_as(task)
        # the exact names the task types and the tuning draw ({task}_{kind}.png): a glob {task}_*.png would also
        # collect task tf_b's plots into task tf's summary
        pngs = sorted(p for kind in kinds if plotted and (p := plots_dir / f"{plotted}_{kind}.png").is_file())
        # what the summary shows: the same tables give the same summary, which is kept instead of filed again
        digest = hashlib.sha256(g.to_csv(index=False).encode() + b"".join(f.read_bytes() for f in files)).hexdigest()
        best = g.sort_values("rank").iloc[0]

        def log(rid, g=g, score=score, files=files, pngs=pngs):
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            metrics = [Metric(f"{m}.{score}", float(a), now, 0) for m, a in zip(g["model"], g[score])]
            retry(client.log_batch, rid, metrics=metrics)
            retry(client.log_text, rid, g.to_csv(index=False), "leaderboard.csv")
            for f in files:
                retry(client.log_artifact, rid, str(f), "all_tasks")
            for png in pngs:
                retry(client.log_artifact, rid, str(png), "plots")

        ids[task] = file_once(client, info["experiment_id"],
                              f"tags.`finebench.summary` = 'true' and tags.task = '{task}'", f"{task}/summary",
                              {"finebench.summary": "true", "task": task, "modality": str(best["modality"]),
                               "best_model": str(best["model"]),
                               "mlflow.note.content": summary_description(task, best, tables_dir)}, digest, log)
    share_view(client, info["experiment_id"], [tt.primary.name for tt in TASK_TYPES.values()
                                               if not of_type(runs, tt.name).empty])
    current = {f"{r.task}/{r.model}/seed{r.seed}": r.mlflow_run_id for r in runs.itertuples()}
    if (tables_dir / "tuning.csv").is_file():  # the tuning trials (finebench.tuning) are runs like any other
        trials = pd.read_csv(tables_dir / "tuning.csv")
        current.update({f"{r.task}/{r.model}/trial{r.trial}": r.mlflow_run_id for r in trials.itertuples()})
    ghosts = end_ghost_runs(client, info["experiment_id"], current)
    out = {"experiment_id": info["experiment_id"], "summary_runs": ids, "ghost_runs_ended": ghosts}
    write_json_atomic(out_file, out)
    return out
