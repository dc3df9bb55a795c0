# Helpers shared by the rules: config checks against the registries, the run list, resolved specs, and every function
# the rules call (the rule files hold rules only).
import json
import os
import re
import shlex
import sys

from snakemake.exceptions import WorkflowError

from finebench import config as fbconfig
from finebench import cluster as fbcluster
from finebench import data as fbdata
from finebench.errors import ConfigError
from finebench.report import TABLE_FILES
from finebench import tuning as fbtuning
from finebench.tasks import TASK_TYPES
from finebench import tasks as fbtasks

try:
    # Checked against the registries once per (config, finebench code, library versions): the check imports torch
    # and timm, which a rerun of an unchanged workflow should not pay for.
    fbconfig.check_cached(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid finebench config — {exc}") from None

CFG = fbconfig.with_defaults(config)
RUNS = fbconfig.runs(CFG)
RESULTS = CFG.get("results") or "results"  # runs, tables, plots, prepared data of this suite (config `results:`)
EXPERIMENT_FILE = f"{RESULTS}/mlflow/experiment.json"
REFERENCES = CFG.get("references") or workflow.source_path("../../config/references.yaml")
SUMMARY_FILE = f"{RESULTS}/tables/mlflow_summary.json"
# The task type of each task (declared by its dataset source; finebench.tasks): its training outputs and plots
TASK_TYPE = {task: fbconfig.task_type_of(CFG, task) for task in CFG["tasks"]}

# Each rule runs `python -m finebench ...` with the interpreter that runs Snakemake (its folder first on PATH), so
# `.venv/bin/snakemake` works without activating the venv.
shell.prefix(f"set -euo pipefail; export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH; ")


def gpus_per_train_job(wildcards):
    """The train rule's `gpu` resource: from device / gpus_per_job, local or cluster executor (finebench.cluster)."""
    return fbcluster.train_gpus(CFG, cluster=fbcluster.cluster_executor(workflow))


wildcard_constraints:
    task="[A-Za-z0-9_-][A-Za-z0-9_.-]*",
    model="[A-Za-z0-9_-][A-Za-z0-9_.-]*",
    seed="[0-9]+",


def run_files(name):
    """One file per run (its metrics.json, history.csv): what the aggregate step reads."""
    return [f"{RESULTS}/runs/{task}/{model}/seed{seed}/{name}" for task, model, seed in RUNS]


# Final seeds per training job (config seeds_per_job): 1 — one job per (task, model, seed), its files the job's
# outputs; more — one job per group of seeds, whose output is runs/{task}/{model}/seeds{group}.json (the runs'
# metrics, written after every run's files), while each run's folder is its own (finebench train-runs).
SEED_GROUPS = fbconfig.seed_groups(CFG)
GROUPED = CFG["seeds_per_job"] > 1


def seed_group_files():
    """Every training job's output when seeds share a job."""
    return [
        f"{RESULTS}/runs/{task}/{model}/seeds{group}.json"
        for task in CFG["tasks"]
        for model in fbconfig.task_models(CFG, task)
        for group in range(len(SEED_GROUPS))
    ]


def run_outputs():
    """What the aggregate step waits for: every run's files (one job per seed), or every group's list (seeds_per_job
    > 1), written by its job once all of the group's run files are."""
    if GROUPED:
        return seed_group_files()
    return run_files("metrics.json") + run_files("history.csv") + task_type_run_files()


def seed_group_json(wildcards):
    """The resolved specs of one group of seeds: Snakemake's params, so editing a model reruns only its jobs."""
    if int(wildcards.group) >= len(SEED_GROUPS):
        raise WorkflowError(f"seeds{wildcards.group}.json: this config has {len(SEED_GROUPS)} group(s) of seeds")
    specs = [fbconfig.resolve_spec(CFG, wildcards.task, wildcards.model, s) for s in SEED_GROUPS[int(wildcards.group)]]
    return json.dumps(specs, sort_keys=True)


def task_type_run_files():
    """The files each run writes as its task type declares them (TaskType.run_files: confusion.csv, examples.npz …),
    every one of them read by the aggregate step."""
    return [
        f"{RESULTS}/runs/{task}/{model}/seed{seed}/{name}"
        for task, model, seed in RUNS
        for name in TASK_TYPES[TASK_TYPE[task]].run_files
    ]


def task_pattern(task_type):
    """A wildcard regex matching exactly the tasks of ``task_type`` (never matching when there are none)."""
    names = [re.escape(t) for t, kind in TASK_TYPE.items() if kind == task_type]
    return "|".join(names) if names else "(?!x)x"


def table_file(name):
    if name not in TABLE_FILES:
        raise WorkflowError(
            f"table {name!r} is not written by finebench.report (TABLE_FILES: {', '.join(TABLE_FILES)})"
        )
    return f"{RESULTS}/tables/{name}"


def tables_except(*names):
    return [table_file(name) for name in TABLE_FILES if name not in names]


PLOT_KINDS = sorted({kind for tt in TASK_TYPES.values() for kind in tt.plot_kinds})


def plot_files(kind):
    if kind not in PLOT_KINDS:
        raise WorkflowError(f"plot kind {kind!r} is drawn for no task type (finebench.tasks: {', '.join(PLOT_KINDS)})")
    return [
        f"{RESULTS}/plots/{task}_{kind}.png" for task in CFG["tasks"] if kind in TASK_TYPES[TASK_TYPE[task]].plot_kinds
    ]


def plot_files_except(*kinds):
    """Every plot of a kind not named (a task type's own kinds, with the report's general caption)."""
    return [path for kind in PLOT_KINDS if kind not in kinds for path in plot_files(kind)]


def download_marker(wildcards):
    if fbconfig.needs_download(CFG, wildcards.task):
        return f"{CFG['download']['cache']}/{CFG['tasks'][wildcards.task]['dataset']}.ready.json"
    return []


def spec_json(wildcards):
    """The fully resolved spec of one run: Snakemake's params, so editing a model reruns only its jobs."""
    spec = fbconfig.resolve_spec(CFG, wildcards.task, wildcards.model, int(wildcards.seed))
    return json.dumps(spec, sort_keys=True)


# Tuned (task, model) pairs (config `tuning:`): their trials run before the final seeds (workflow/rules/tune.smk)
TUNED = [(t, m) for t in CFG["tasks"] for m in fbconfig.task_models(CFG, t) if fbtuning.is_tuned(CFG, t, m)]


def trial_chunk_json(wildcards):
    """The specs of one group of trials (tuning.runs_per_job): Snakemake's params, so a changed space reruns them."""
    specs = fbconfig.trial_specs(CFG, wildcards.task, wildcards.model)
    group = fbtuning.chunks(CFG, wildcards.task, wildcards.model)[int(wildcards.chunk)]
    return json.dumps([specs[k] for k in group], sort_keys=True)


def trial_chunk_files(wildcards):
    n = len(fbtuning.chunks(CFG, wildcards.task, wildcards.model))
    return [f"{RESULTS}/tune/{wildcards.task}/{wildcards.model}/trials{c}.json" for c in range(n)]


def tuning_identity_json(wildcards):
    return json.dumps(fbtuning.identity(CFG, wildcards.task, wildcards.model), sort_keys=True)


def selected_file(wildcards):
    """A tuned final run's selection (its --tuned); nothing for a hand-set one."""
    if (wildcards.task, wildcards.model) in TUNED:
        return f"{RESULTS}/tune/{wildcards.task}/{wildcards.model}/selected.json"
    return []


def selected_files():
    return [f"{RESULTS}/tune/{task}/{model}/selected.json" for task, model in TUNED]


def tuning_outputs():
    """The aggregate step's tuning tables (finebench.tuning.TUNING_FILES), when something is tuned."""
    return [f"{RESULTS}/tables/{name}" for name in fbtuning.TUNING_FILES] if TUNED else []


def tuning_plots():
    return [f"{RESULTS}/plots/{task}_evp.png" for task in dict.fromkeys(task for task, _ in TUNED)]


def task_options_json(wildcards):
    return json.dumps(fbconfig.task_options(CFG, wildcards.task), sort_keys=True)


# Pretrained Hugging Face models (arch: hf:<id>; rules in hf.smk): their tokenisation caches and inputs.
from finebench.data import hf_tokens as fb_hf_tokens
from finebench.errors import FinebenchError
from finebench.models.hf import HF_PREFIX
from finebench.models.hf_load import source_of

HF_OPTION_KEYS = ("pretrained_dir", "revision", "max_length")


def hf_options(model):
    m = CFG["models"][model]
    return {k: m[k] for k in HF_OPTION_KEYS if m.get(k) is not None}


def hf_tokenize_jobs():
    """{(task, tokenizer slug): (model id, options)} for every hf: text model and every task it runs on. Checked at
    parse time: a pretrained_dir without a model or a tokenizer fails before any job runs."""
    jobs = {}
    for name, m in CFG["models"].items():
        if not m["arch"].startswith(HF_PREFIX):
            continue
        try:
            source_of(m["arch"][len(HF_PREFIX) :], hf_options(name))
            if m["modality"] == "text":
                fb_hf_tokens.tokenizer_files(hf_options(name))
        except FinebenchError as exc:
            raise WorkflowError(f"invalid finebench config — models.{name}.{exc}") from None
    for task, model, _ in RUNS:
        m = CFG["models"][model]
        if m["arch"].startswith(HF_PREFIX) and m["modality"] == "text":
            name, opts = m["arch"][len(HF_PREFIX) :], hf_options(model)
            jobs[(task, fb_hf_tokens.cache_slug(name, opts))] = (name, opts)
    return jobs


HF_TOKENIZE = hf_tokenize_jobs()


def train_data(wildcards):
    """The train job's --data: the prepared task, or for an hf: model on a task type that says so (its hf_input:
    "view", classification) the task's tokenisation (text) or waveform view (speech); the prepared form of other
    task types already holds what hf: models take (asr: the waveforms)."""
    m = CFG["models"][wildcards.model]
    if m["arch"].startswith(HF_PREFIX) and fbtasks.get(TASK_TYPE[wildcards.task]).hf_input == "view":
        if m["modality"] == "text":
            slug = fb_hf_tokens.cache_slug(m["arch"][len(HF_PREFIX) :], hf_options(wildcards.model))
            return f"{RESULTS}/tokens/{wildcards.task}/{slug}"
        return f"{RESULTS}/waveform/{wildcards.task}"
    return f"{RESULTS}/data/{wildcards.task}"


# Weights from the hubs (timm pretrained: true, hf: without pretrained_dir; finebench.prefetch): fetched by the local
# rule prefetch_weights (hf.smk), one job per weight, into {download.cache}/hub; the jobs that read them wait for it.
from finebench import prefetch as fbprefetch

HUB_WEIGHTS = fbprefetch.weights_needed(CFG["models"], [m for _, m, _ in RUNS])  # {slug: weight, models using it}


def hub_weight_json(wildcards):
    """One weight's prefetch job's params: the weight alone (not which models use it), so that a model added later
    never reruns it — nor, through its marker, the finished runs of the models that share it."""
    if wildcards.weights not in HUB_WEIGHTS:
        raise WorkflowError(
            f"no model of this config starts from pretrained weights {wildcards.weights!r} "
            f"(those it needs: {', '.join(HUB_WEIGHTS) or 'none'})"
        )
    weight = {k: v for k, v in HUB_WEIGHTS[wildcards.weights].items() if k != "models"}
    return json.dumps([weight], sort_keys=True)


def hub_marker(wildcards):
    """The marker of the weight a training or tuning job's model starts from, or a tokenize job's hf: model; nothing
    for the others (so a config without pretrained weights has no prefetch job)."""
    if hasattr(wildcards, "tokenizer"):
        name, opts = HF_TOKENIZE[(wildcards.task, wildcards.tokenizer)]
        arch, revision = HF_PREFIX + name, opts.get("revision")
        if not fbprefetch.needs_hub(arch, opts):
            return []
    else:
        weight = fbprefetch.model_weight(CFG["models"][wildcards.model])
        if weight is None:
            return []
        arch, revision = weight["arch"], weight.get("revision")
    return fbprefetch.marker_path(CFG["download"]["cache"], fbprefetch.weight_slug(arch, revision))


def hub_env(wildcards, input):
    """The job's hub environment (finebench.prefetch.job_env): offline always, reading the prefetched cache when the
    job has a weight's marker as input. Derived from the input, so it never marks a finished run stale by itself."""
    return fbprefetch.shell_env(os.path.dirname(input.hub) if input.hub else None)
