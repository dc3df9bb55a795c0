"""Configuration: load, validate (schema + registries), and resolve one run's full spec.

The schema (workflow/schemas/config.schema.yaml) checks structure; :func:`check` checks names against the
dataset and model registries and cross-references (a model's ``tasks:``), naming the key at fault.
:func:`resolve_spec` merges training defaults <- task overrides <- model overrides into the spec that a
training job receives (and that Snakemake uses as the job's params, so editing one model reruns only it).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path

import yaml

from finebench.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

TRAINING_DEFAULTS = {
    "epochs": 8,
    "batch_size": 128,
    "eval_batch_size": 512,
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 0.05,
    "momentum": 0.9,
    "scheduler": "cosine",
    "warmup_epochs": 0.0,
    "label_smoothing": 0.0,
    "grad_clip": 0.0,
    "max_train_batches": None,
    "spec_augment": None,
}
DEFAULTS = {"tracking_uri": "sqlite:///results/mlflow.db", "device": "auto", "threads": 1, "training": {},
            "download": {"cache": "results/downloads", "mirror": None, "lock": None}}
MODEL_RESERVED_KEYS = {"family", "modality", "arch", "tasks", "training"}
TASK_RESERVED_KEYS = {"dataset", "training"}


def did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def load(path: str | Path) -> dict:
    """Read a YAML config, apply defaults, validate it. Raises ConfigError naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    validate_schema(config, source=str(path))
    check(config)
    return with_defaults(config)


def validate_schema(config: dict, source: str = "config") -> None:
    import jsonschema

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        lines = [f"{'.'.join(map(str, e.path)) or '<top level>'}: {e.message}" for e in errors]
        raise ConfigError(f"{source} does not match the config schema:\n  " + "\n  ".join(lines))


def with_defaults(config: dict) -> dict:
    out = {**DEFAULTS, **config}
    out["training"] = {**TRAINING_DEFAULTS, **(config.get("training") or {})}
    out["download"] = {**DEFAULTS["download"], **(config.get("download") or {})}
    return out


def check(config: dict) -> None:
    """Semantic checks against the registries. Every message starts with the key path at fault."""
    from finebench import data, models

    config = with_defaults(config)
    for task, tcfg in config["tasks"].items():
        key = f"tasks.{task}"
        ds = tcfg.get("dataset")
        if ds not in data.DATASETS:
            raise ConfigError(
                f"{key}.dataset: unknown dataset {ds!r}{did_you_mean(str(ds), data.DATASETS)}; "
                f"known datasets: {', '.join(sorted(data.DATASETS))}"
            )
        source = data.DATASETS[ds]
        for required in ("root", "path"):
            if required in source.defaults and source.defaults[required] is None and not source.downloadable \
                    and not tcfg.get(required) and not (required == "root" and "path" in source.defaults):
                raise ConfigError(f"{key}.{required}: required for dataset {ds!r} (nothing to download for it)")
        if ds == "text_table" and not tcfg.get("path"):
            raise ConfigError(f"{key}.path: required for dataset 'text_table' (a .csv, .tsv or .jsonl file)")
        for opt in tcfg:
            if opt not in TASK_RESERVED_KEYS and opt not in source.defaults:
                raise ConfigError(
                    f"{key}.{opt}: unknown option for dataset {ds!r}{did_you_mean(opt, source.defaults)}; "
                    f"valid options: {', '.join(sorted(source.defaults)) or '(none)'}"
                )
    for name, mcfg in config["models"].items():
        key = f"models.{name}"
        models.check_arch(mcfg["arch"], mcfg["modality"], key=f"{key}.arch")
        if "family" not in mcfg and models.default_family(mcfg["arch"]) is None:
            raise ConfigError(f"{key}.family: required for {mcfg['arch']!r} (one of cnn, rnn, transformer, other)")
        for task in mcfg.get("tasks", []):
            if task not in config["tasks"]:
                raise ConfigError(
                    f"{key}.tasks: unknown task {task!r}{did_you_mean(task, config['tasks'])}; "
                    f"tasks in this config: {', '.join(config['tasks'])}"
                )
            task_modality = data.DATASETS[config["tasks"][task]["dataset"]].modality
            if task_modality != mcfg["modality"]:
                raise ConfigError(
                    f"{key}.tasks: task {task!r} is {task_modality}, but the model's modality is {mcfg['modality']}"
                )
    for task in config["tasks"]:
        if not task_models(config, task):
            modality = task_modality_of(config, task)
            raise ConfigError(f"tasks.{task}: no model in `models:` has modality {modality!r}, so nothing would run")


def task_modality_of(config: dict, task: str) -> str:
    from finebench import data

    return data.DATASETS[config["tasks"][task]["dataset"]].modality


def task_models(config: dict, task: str) -> list[str]:
    """Models that run on ``task``: same modality, and ``tasks:`` (if given) lists it."""
    modality = task_modality_of(config, task)
    return [
        name
        for name, m in config["models"].items()
        if m["modality"] == modality and ("tasks" not in m or task in m["tasks"])
    ]


def runs(config: dict) -> list[tuple[str, str, int]]:
    """Every (task, model, seed) the config asks for, in config order."""
    return [(t, m, s) for t in config["tasks"] for m in task_models(config, t) for s in config["seeds"]]


def needs_download(config: dict, task: str) -> bool:
    """True when the task's dataset is fetched by the download rule (a downloadable dataset with no ``root:``)."""
    from finebench import data

    tcfg = config["tasks"][task]
    return data.DATASETS[tcfg["dataset"]].downloadable and not tcfg.get("root")


def task_options(config: dict, task: str) -> dict:
    """The dataset's options for ``task``: registry defaults overridden by the task entry."""
    from finebench import data

    tcfg = config["tasks"][task]
    source = data.DATASETS[tcfg["dataset"]]
    return {**source.defaults, **{k: v for k, v in tcfg.items() if k not in TASK_RESERVED_KEYS}}


def resolve_spec(config: dict, task: str, model: str, seed: int) -> dict:
    """The complete, self-contained description of one training run."""
    from finebench import models

    from finebench.models.hf import training_defaults  # fine-tuning defaults of pretrained hf: models (else {})

    config = with_defaults(config)
    tcfg, mcfg = config["tasks"][task], config["models"][model]
    training = {**config["training"], **(tcfg.get("training") or {}),
                **training_defaults(mcfg["arch"], mcfg["modality"]), **(mcfg.get("training") or {})}
    return {
        "task": task,
        "dataset": tcfg["dataset"],
        "modality": mcfg["modality"],
        "model": model,
        "family": mcfg.get("family") or models.default_family(mcfg["arch"]),
        "arch": mcfg["arch"],
        "model_kwargs": {k: v for k, v in mcfg.items() if k not in MODEL_RESERVED_KEYS},
        "training": training,
        "seed": int(seed),
    }


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
