# Helpers shared by the rules: config checks against the registries, the run list, resolved specs.
import json
import sys

from snakemake.exceptions import WorkflowError

from finebench import config as fbconfig
from finebench.errors import ConfigError

try:
    fbconfig.check(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid finebench config — {exc}") from None

CFG = fbconfig.with_defaults(config)
RUNS = fbconfig.runs(CFG)
FINEBENCH = f"{sys.executable} -m finebench"
RESULTS = "results"
EXPERIMENT_FILE = f"{RESULTS}/mlflow/experiment.json"
TABLE_FILES = ["leaderboard.csv", "leaderboard.md", "leaderboard.html", "costs.md", "families.csv", "families.md", "runs.csv",
               "model_ranks.csv", "family_ranks.csv", "ranks.md", "references.csv", "references.md",
               "leaderboard_sr.csv", "families_sr.csv", "family_ranks_sr.csv"]
REFERENCES = CFG.get("references") or workflow.source_path("../../config/references.yaml")
PLOT_KINDS = ["learning_curves", "confusion_best", "pareto"]
SUMMARY_FILE = f"{RESULTS}/tables/mlflow_summary.json"
CLS_TASKS = [t for t in CFG["tasks"] if fbconfig.task_type_of(CFG, t) == "classification"]
SR_TASKS = [t for t in CFG["tasks"] if fbconfig.task_type_of(CFG, t) == "superres"]


wildcard_constraints:
    task="[A-Za-z0-9_.-]+",
    model="[A-Za-z0-9_.-]+",
    seed="[0-9]+",


def run_dir(task, model, seed):
    return f"{RESULTS}/runs/{task}/{model}/seed{seed}"


def spec_json(wildcards):
    """The fully resolved spec of one run: Snakemake's params, so editing a model reruns only its jobs."""
    spec = fbconfig.resolve_spec(CFG, wildcards.task, wildcards.model, int(wildcards.seed))
    return json.dumps(spec, sort_keys=True)


def task_options_json(wildcards):
    return json.dumps(fbconfig.task_options(CFG, wildcards.task), sort_keys=True)
