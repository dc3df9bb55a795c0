"""Configuration: load, validate (schema + registries), and resolve one run's full spec.

The schema (``config.schema.yaml`` beside this module: package data, the one file the workflow validates against too)
checks structure; :func:`check` checks names against the dataset and model registries and cross-references (a model's
``tasks:``), naming the key at fault.
:func:`resolve_spec` merges training defaults <- task overrides <- model overrides into the spec that a
training job receives (and that Snakemake uses as the job's params, so editing one model reruns only it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

from finebench.errors import ConfigError, FinebenchError, did_you_mean
from finebench.tasks.registry import LEGACY

SCHEMA_PATH = Path(__file__).resolve().with_name("config.schema.yaml")  # package data: found from any install

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
    "grad_clip": 0.0,
    "max_train_batches": None,
    "spec_augment": None,
    "channels_last": "auto",
    "cudnn_benchmark": True,
    "tf32": True,
    "compile": False,
    "keep_checkpoint": False,
    "checkpoint_minutes": 5,
}
DEFAULTS: dict[str, Any] = {"tracking_uri": "sqlite:///results/mlflow.db", "device": "auto", "threads": 1,
                             "seeds_per_job": 1, "training": {},
                             "download": {"cache": "results/downloads", "mirror": None, "lock": None}}
MODEL_RESERVED_KEYS = {"family", "modality", "arch", "tasks", "training", "tuning"}
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())  # read once: validation, TRAINING_KEYS, the tuning checks


def with_task_types(schema: dict, defaults: dict) -> dict[str, tuple[str, ...]]:
    """Each task type's training keys (finebench.tasks: ``TaskType.training``, ``training_defaults``) merged into
    the schema's training section, closed to any other key, and into ``defaults``; returns {key: the task types that
    read it}. Two types may share a key only with the same schema."""
    from finebench.tasks import TASK_TYPES

    training = schema["$defs"]["training"]
    props = training["properties"]
    owners: dict[str, tuple[str, ...]] = {}
    for tt in TASK_TYPES.values():
        for key, prop in tt.training.items():
            if key in props and props[key] != prop:
                raise FinebenchError(f"task type {tt.name!r}: training key {key!r} is declared otherwise by "
                                     f"{' and '.join(owners.get(key, ('the config schema',)))}")
            props[key] = prop
            owners[key] = (*owners.get(key, ()), tt.name)
        defaults.update(tt.training_defaults)
    training["additionalProperties"] = False
    return owners


TRAINING_OWNERS = with_task_types(SCHEMA, TRAINING_DEFAULTS)  # {training key: the task types that alone read it}
# Every key of a training: section (the schema's): what a search space may tune besides builder options
TRAINING_KEYS = frozenset(SCHEMA["$defs"]["training"]["properties"])
# Inputs of a typical task per modality, to check a model's builder options before any data exists (option names
# only: errors about shapes are left to the real build).
PROBE_INPUTS = {
    "vision": {"kind": "image", "channels": 3, "height": 224, "width": 224},
    "speech": {"kind": "spectrogram", "channels": 1, "n_mels": 40, "frames": 100},
    "text": {"kind": "tokens", "vocab_size": 1000, "pad_id": 0, "max_len": 64},
}
TASK_RESERVED_KEYS = {"dataset", "training"}
# Training keys left out of a run's spec at their default: how fast it runs on a GPU, not what it computes there
# (the CPU ignores them), so adding them did not make every finished run's spec change and retrain.
OMITTED_DEFAULTS = {"precision": "auto", "channels_last": "auto", "cudnn_benchmark": True, "tf32": True,
                    "checkpoint_minutes": 5}
# Task and model names become path components (results/data/{task}, results/runs/{task}/{model}/seed{seed}) and MLflow
# run names ({task}/{model}/seed0, {task}/{model}/tuning, {task}/summary). The schema keeps them to one component
# that cannot climb (no separator, no leading dot: not . or ..); these are the names finebench gives its own folders
# and runs, which a task or model named alike would be mistaken for.
RESERVED_NAMES = frozenset({"data", "runs", "tune", "tokens", "waveform", "logs", "tables", "plots", "mlflow",
                            "mlartifacts", "downloads", "tracking-server", "summary", "tuning"})
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")  # the schema's propertyNames pattern of tasks and models


def load(path: str | Path) -> dict:
    """Read a YAML config, apply defaults, validate it. Raises ConfigError naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        config = load_yaml(path.read_text(), source=str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    coerce_numbers(config)
    drop_removed(config)
    validate_schema(config, source=str(path))
    check(config)
    return with_defaults(config)


# PyYAML implements YAML 1.1, whose floats need a dot and a signed exponent, so it reads `1e-3`, `5e4` or `1.0e3` as
# strings (YAML 1.2, JSON and every other reader: numbers). This is YAML 1.2's float with an exponent; the forms
# without one (`0.001`) PyYAML already reads as numbers.
EXP_FLOAT_RE = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+\.?[0-9]*)[eE][-+]?[0-9]+$")


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats (``1e-3`` is a number, as every other YAML/JSON reader says)."""


YamlLoader.add_implicit_resolver("tag:yaml.org,2002:float", EXP_FLOAT_RE, list("-+.0123456789"))


def load_yaml(text: str, source: str = "YAML"):
    """Parse YAML the way every finebench file is read (configs, references): safe, with YAML 1.2 floats, and refused
    when its aliases expand it past MAX_VALUES values (:func:`check_expansion`)."""
    obj = yaml.load(text, Loader=YamlLoader)
    check_expansion(obj, source)
    return obj


# A "billion laughs" file: nine lines of anchors (&a) and aliases (*a) that PyYAML loads in a blink, as shared lists,
# but that expand to 10⁹ values for whatever walks them (the schema check, Snakemake, json.dumps): it would hang.
# The largest real config (config/benchmark.yaml) has under 2,000 values.
MAX_VALUES = 100_000


def check_expansion(obj, source: str = "config") -> int:
    """The number of values ``obj`` holds once its shared parts (YAML aliases) are expanded, counted without
    expanding them; a ConfigError naming ``source`` when it exceeds MAX_VALUES or contains itself."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(o) -> int:
        if not isinstance(o, (dict, list)):
            return 1
        if id(o) in sizes:
            return sizes[id(o)]
        if id(o) in open_:
            raise ConfigError(f"{source}: a YAML alias (*name) makes the document contain itself; write the values out")
        open_.add(id(o))
        n = 1 + sum(size(v) for v in (o.values() if isinstance(o, dict) else o))
        open_.discard(id(o))
        sizes[id(o)] = n = min(n, MAX_VALUES + 1)
        return n

    try:
        total = size(obj)
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a finebench config") from None
    if total > MAX_VALUES:
        raise ConfigError(f"{source}: its YAML aliases (&anchor / *alias) expand it to more than {MAX_VALUES:,} values "
                          f"(a \"billion laughs\" document?); refused before anything reads it — write the values out")
    return total


def coerce_numbers(obj, key: str = "") -> list[str]:
    """Turn string values that are YAML 1.2 floats (``"1e-3"``) into floats, in place; returns the keys changed.

    Snakemake reads ``--configfile`` itself with PyYAML's YAML 1.1 rules, so the Snakefile calls this before
    validating; :func:`load` calls it too, so both paths accept the same numbers.
    """
    changed = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in list(items):
        where = f"{key}.{k}" if key else str(k)
        if isinstance(v, str) and EXP_FLOAT_RE.match(v.strip()):
            obj[k] = float(v)
            changed.append(where)
        elif isinstance(v, (dict, list)):
            changed += coerce_numbers(v, where)
    return changed


def drop_removed(config: dict) -> list[str]:
    """Remove, in place, the tasks and models a later config file set to null (``tasks: {photos_x2: null}``: config
    files given one after another are merged, and null is how one leaves out an entry of an earlier one); returns
    their keys."""
    removed = []
    for section in ("tasks", "models"):
        for name in [n for n, v in (config.get(section) or {}).items() if v is None]:
            del config[section][name]
            removed.append(f"{section}.{name}")
    return removed


def validate_schema(config: dict, source: str = "config") -> None:
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(config), key=lambda e: list(e.path))
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
    check_names(config)
    if (config.get("gpus_per_job") or 0) > 1:
        raise ConfigError(f"gpus_per_job: {config['gpus_per_job']} — a training run uses one GPU (finebench has no "
                          f"DistributedDataParallel yet), so the other {config['gpus_per_job'] - 1} would be held "
                          f"idle; set 1 and let more jobs run at once (--resources gpu=N locally, one Slurm job per "
                          f"GPU)")
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
        for opt in tcfg:
            if opt not in TASK_RESERVED_KEYS and opt not in source.defaults:
                raise ConfigError(
                    f"{key}.{opt}: unknown option for dataset {ds!r}{did_you_mean(opt, source.defaults)}; "
                    f"valid options: {', '.join(sorted(source.defaults)) or '(none)'}"
                )
        try:
            options = task_options(config, task)  # the source's own checks (DatasetSource.normalize)
            data.registry.check_option_values(source, options)
        except FinebenchError as exc:  # "option: what is wrong" -> "tasks.<task>.option: what is wrong"
            raise ConfigError(f"{key}.{exc}") from exc
        for opt, what in (("root", "folder"), ("path", "file")):  # named now, not in a prepare job after queueing
            if options.get(opt) and not Path(options[opt]).expanduser().exists():
                raise ConfigError(f"{key}.{opt}: {options[opt]} does not exist — the {what} of the dataset's files"
                                  + (" (or leave root out: the download rule fetches the release)"
                                     if opt == "root" and source.downloadable else ""))
    for name, mcfg in config["models"].items():
        key = f"models.{name}"
        models.check_arch(mcfg["arch"], mcfg["modality"], key=f"{key}.arch")
        models.check_options(mcfg["arch"], {k: v for k, v in mcfg.items() if k not in MODEL_RESERVED_KEYS},
                             PROBE_INPUTS[mcfg["modality"]], key=key, reserved=sorted(MODEL_RESERVED_KEYS))
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
            task_type, model_type = task_type_of(config, task), models.arch_task_type(mcfg["arch"])
            if not models.solves(mcfg["arch"], task_type):
                raise ConfigError(f"{key}.tasks: task {task!r} is a {task_type} task, but {mcfg['arch']!r} is a "
                                  f"{model_type} architecture")
    for task in config["tasks"]:
        if not task_models(config, task):
            modality = task_modality_of(config, task)
            kind = ("" if task_type_of(config, task) == LEGACY
                    else f" and a {task_type_of(config, task)} architecture")
            raise ConfigError(f"tasks.{task}: no model in `models:` has modality {modality!r}{kind}, "
                              f"so nothing would run")
    check_tuning(config)
    check_every_time(config)


def check_names(config: dict) -> None:
    """Task and model names are safe path components that are not finebench's own (checked here too, for a config
    that did not pass through the schema)."""
    for section in ("tasks", "models"):
        for name in config.get(section) or {}:
            if not isinstance(name, str) or not SAFE_NAME.match(name):
                raise ConfigError(f"{section}.{name}: not a usable name — it becomes a folder name "
                                  f"(results/{'data' if section == 'tasks' else 'runs/<task>'}/{name}): use letters, "
                                  f"digits, _ - and . (not first), e.g. {re.sub(r'[^A-Za-z0-9_-]', '_', str(name))}")
            if name.lower() in RESERVED_NAMES:
                raise ConfigError(f"{section}.{name}: finebench names its own folders and MLflow runs so "
                                  f"({', '.join(sorted(RESERVED_NAMES))}); choose another name, e.g. {name}_1")


def check_results_folder(config: dict, workdir: str | Path | None = None) -> Path:
    """The results: folder, resolved: inside the working directory (a subfolder of it), or anywhere else with
    results_outside_workdir: true — never the working directory itself or a folder above it, which a rerun would
    empty (it replaces prepared-data and run folders inside it). Raises ConfigError naming the key."""
    workdir = Path(workdir or os.getcwd()).resolve()
    given = config.get("results") or "results"
    folder = (workdir / Path(given).expanduser()).resolve()
    if folder == workdir or folder in workdir.parents:
        what = "the working directory" if folder == workdir else "a folder above the working directory"
        raise ConfigError(f"results: {given!r} is {what} ({folder}); finebench replaces and removes folders inside "
                          f"results:, so it must be a folder of its own, e.g. results: results")
    if workdir not in folder.parents and not config.get("results_outside_workdir"):
        raise ConfigError(f"results: {given!r} resolves to {folder}, outside the working directory {workdir}; set "
                          f"results_outside_workdir: true to keep this suite's results there (a rerun replaces and "
                          f"removes folders inside it), or use a folder inside, e.g. results: results")
    return folder


def check_every_time(config: dict) -> None:
    """The cheap checks that :func:`check_cached` repeats even for a config it has seen: the tracking store may have
    become unreachable since, the working directory may be another, and a warning should not be shown only once."""
    config = with_defaults(config)
    check_results_folder(config)
    for warning in modality_warnings(config):
        print(f"[finebench] WARNING {warning}", file=sys.stderr, flush=True)
    check_tracking_uri(config["tracking_uri"])


def modality_warnings(config: dict) -> list[str]:
    """Models that would never run: no task of their modality (a model listing ``tasks:`` is checked in
    :func:`check`)."""
    modalities = {task_modality_of(config, t) for t in config["tasks"]}
    return [
        f"models.{name}: no task in `tasks:` is {m['modality']} (tasks here are {', '.join(sorted(modalities))}), "
        f"so this model does not run; add a {m['modality']} task or remove the model"
        for name, m in config["models"].items()
        if m["modality"] not in modalities
    ]


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, naming the path or URL, where MLflow would retry for minutes: a ``sqlite:///`` store whose
    folder cannot be written, or an ``http(s)://`` server that does not answer within ``timeout`` seconds.
    Other schemes (postgresql://, databricks …) are left to MLflow."""
    from urllib.parse import urlparse

    scheme = urlparse(uri).scheme.lower()
    if scheme == "sqlite":
        check_sqlite_store(uri)
    elif scheme in ("http", "https"):
        check_tracking_server(uri, timeout)


def check_sqlite_store(uri: str) -> None:
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        raise ConfigError(f"tracking_uri: {uri!r} is not a SQLite file URI; write sqlite:///relative/path.db or "
                          f"sqlite:////absolute/path.db")
    db = Path(uri[len(prefix):])
    if db.is_dir():
        raise ConfigError(f"tracking_uri: {db} is a folder; name the database file, e.g. {uri.rstrip('/')}/mlflow.db")
    if db.exists():
        if not os.access(db, os.R_OK | os.W_OK):
            raise ConfigError(f"tracking_uri: the MLflow database {db} is not writable by this user; fix its "
                              f"permissions or point tracking_uri at another file")
        folder = db.parent
    else:
        folder = db.parent
        while not folder.exists() and folder != folder.parent:  # the first existing folder: the store creates the rest
            folder = folder.parent
    # SQLite writes a journal beside the database, so the folder itself must be writable.
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"tracking_uri: cannot create or write the MLflow database {db}: the folder "
                          f"{folder.resolve()} is not writable; choose a writable path, e.g. sqlite:///results/mlflow.db")


def check_tracking_server(uri: str, timeout: float) -> None:
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return  # there, behind authentication (MLflow sends MLFLOW_TRACKING_USERNAME/_TOKEN; urllib does not)
        raise ConfigError(f"tracking_uri: {uri} answers, but not as an MLflow tracking server (GET {url}: HTTP "
                          f"{exc.code}); check the host, port and path") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"tracking_uri: the MLflow server {uri} does not answer ({reason}) within {timeout:g} s; "
                          f"start it (`make tracking-server`: MLflow with authentication) or point tracking_uri at "
                          f"a reachable server") from None


def check_cached(config: dict, cache_dir: str | Path = ".snakemake/finebench") -> bool:
    """:func:`check`, skipped when this exact config already passed it with this exact finebench code and these
    library versions (a marker named by their hash). Checking imports torch and timm (~4 s, ~900 MB); a rerun of an
    unchanged workflow should not pay that. Returns True when the check ran."""
    import importlib.metadata

    package = Path(__file__).resolve().parent
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for f in sorted(package.rglob("*.py")):
        h.update(f.read_bytes())
    for dist in ("torch", "timm", "mlflow"):
        try:
            h.update(importlib.metadata.version(dist).encode())
        except importlib.metadata.PackageNotFoundError:
            pass
    marker = Path(cache_dir) / f"config-ok-{h.hexdigest()[:16]}"
    if marker.is_file():
        check_every_time(config)
        return False
    check(config)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"checked": True}) + "\n")
    return True


def task_modality_of(config: dict, task: str) -> str:
    from finebench import data

    return data.DATASETS[config["tasks"][task]["dataset"]].modality


def task_type_of(config: dict, task: str) -> str:
    """The task's task type (finebench.tasks), declared by its dataset source."""
    from finebench import data

    return data.DATASETS[config["tasks"][task]["dataset"]].task_type


def task_models(config: dict, task: str) -> list[str]:
    """Models that run on ``task``: same modality, an architecture for the task's type (a classifier never runs on a
    super-resolution task, nor the reverse), and ``tasks:`` (if given) lists it."""
    from finebench.models import solves

    modality, task_type = task_modality_of(config, task), task_type_of(config, task)
    return [
        name
        for name, m in config["models"].items()
        if m["modality"] == modality and solves(m["arch"], task_type) and ("tasks" not in m or task in m["tasks"])
    ]


def runs(config: dict) -> list[tuple[str, str, int]]:
    """Every (task, model, seed) the config asks for, in config order."""
    return [(t, m, s) for t in config["tasks"] for m in task_models(config, t) for s in config["seeds"]]


def seed_groups(config: dict) -> list[list[int]]:
    """The config's seeds in groups of ``seeds_per_job``, in order: one training job (one process) per group and
    (task, model)."""
    seeds, size = list(config["seeds"]), int(config.get("seeds_per_job") or 1)
    return [seeds[i:i + size] for i in range(0, len(seeds), size)]


def needs_download(config: dict, task: str) -> bool:
    """True when the task's dataset is fetched by the download rule (a downloadable dataset with no ``root:``)."""
    from finebench import data

    tcfg = config["tasks"][task]
    return data.DATASETS[tcfg["dataset"]].downloadable and not tcfg.get("root")


def task_options(config: dict, task: str) -> dict:
    """The dataset's options for ``task``: registry defaults overridden by the task entry, in the source's canonical
    form (``DatasetSource.normalize``)."""
    from finebench import data

    tcfg = config["tasks"][task]
    source = data.DATASETS[tcfg["dataset"]]
    options = {**source.defaults, **{k: v for k, v in tcfg.items() if k not in TASK_RESERVED_KEYS}}
    return source.normalize(options) if source.normalize else options


def resolve_spec(config: dict, task: str, model: str, seed: int) -> dict:
    """The complete, self-contained description of one training run. A tuned (task, model) (finebench.tuning) adds
    ``tuning``: what its tuning is (space, budget, sampler, seed); the trainer reads the chosen values from the
    selection file (``train --tuned``)."""
    from finebench import models, tuning
    from finebench.models.hf import training_defaults  # fine-tuning defaults of pretrained hf: models (else {})

    config = with_defaults(config)
    tcfg, mcfg = config["tasks"][task], config["models"][model]
    training = {**config["training"], **(tcfg.get("training") or {}),
                **training_defaults(mcfg["arch"], mcfg["modality"]), **(mcfg.get("training") or {})}
    for key, default in OMITTED_DEFAULTS.items():  # a default written out: the same spec (and hash) as leaving it out
        if key in training and training[key] == default and type(training[key]) is type(default):
            del training[key]
    spec = {
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
    if tuning.is_tuned(config, task, model):
        spec["tuning"] = tuning.identity(config, task, model)
    return spec


# ---------------------------------------------------------------------------------------------------------------
# Tuning (finebench.tuning: spaces, draws, selection, expected best): its checks and its trials' specs


def check_tuning(config: dict) -> None:
    """Every space of every tuned model: known distributions and keys, bounds in order, choices the model accepts,
    keys the model uses; the tasks list and the budgets. Raises ConfigError naming the key."""
    from finebench import tuning as tn

    tuning = tn.settings(config)
    if tuning is None:
        for model, m in config["models"].items():
            if isinstance(m.get("tuning"), dict):
                raise ConfigError(f"models.{model}.tuning: given, but the config has no top-level tuning: section, "
                                  f"so nothing is tuned; add one (e.g. tuning: {{budget: 8}}) or remove this key")
        return
    for task in tuning["tasks"] or []:
        if task not in config["tasks"]:
            raise ConfigError(f"tuning.tasks: unknown task {task!r}{did_you_mean(task, config['tasks'])}; tasks in "
                              f"this config: {', '.join(config['tasks'])}")
    for family, space in (tuning.get("spaces") or {}).items():
        if family not in tn.DEFAULT_SPACES:
            raise ConfigError(f"tuning.spaces.{family}: not a family{did_you_mean(family, tn.DEFAULT_SPACES)}; "
                              f"families: {', '.join(tn.DEFAULT_SPACES)}")
        tn.dimensions(space, f"tuning.spaces.{family}")  # its form, even where no tuned model is of that family
    if tuning["sampler"] == "sobol":
        for model in config["models"]:
            b = tn.budget_of(config, model)
            if b & (b - 1):
                warnings.warn(f"tuning.sampler: sobol with a budget of {b} trials ({model}), not a power of two: "
                              f"the points lose the Sobol sequence's balance (use 8, 16, 32 …)", stacklevel=2)
    tuned = {m for t in config["tasks"] for m in task_models(config, t) if tn.is_tuned(config, t, m)}
    trial_seeds = range(tn.TRIAL_SEED, tn.TRIAL_SEED + max((tn.budget_of(config, m) for m in tuned), default=0))
    clash = sorted(s for s in config.get("seeds") or [] if s in trial_seeds)
    if clash:
        raise ConfigError(f"seeds: {clash[0]} is also the seed of tuning trial {clash[0] - tn.TRIAL_SEED} (trial k "
                          f"trains with seed {tn.TRIAL_SEED} + k); a final run must not repeat a trial — use final "
                          f"seeds below {tn.TRIAL_SEED}")
    for model in config["models"]:
        own = config["models"][model].get("tuning")
        if isinstance(own, dict) and "budget" in own and (isinstance(own["budget"], bool)
                                                          or not isinstance(own["budget"], int)
                                                          or not 1 <= own["budget"] <= 1000):
            raise ConfigError(f"models.{model}.tuning.budget: {own['budget']!r} — a whole number of trials, 1 to 1000")
        if model in tuned:
            check_tuning_space(config, model)


def check_tuning_space(config: dict, model: str) -> None:
    """One tuned model's space, each key checked against training: and the model's builder (see check_tuning)."""
    from finebench import models
    from finebench import tuning as tn
    from finebench.models.registry import builder_parameters

    space, where = tn.space_of(config, model)
    m = config["models"][model]
    tasks = [t for t in config["tasks"] if model in task_models(config, t) and tn.is_tuned(config, t, model)]
    task_types = {task_type_of(config, t) for t in tasks}
    base = resolve_spec(config, tasks[0], model, 0)
    kwargs = base["model_kwargs"]
    for key, kind, args in tn.dimensions(space, where):
        at = f"{where}.{key}"
        values = args if kind == "choice" else [args[0], args[1]]
        if kind in ("uniform", "loguniform"):  # what a draw looks like: a float between the bounds, seldom whole
            values = [*values, float(args[0] + 0.37 * (args[1] - args[0]))]
        if key in TRAINING_KEYS:
            why = tn.unused_training_key(key, base["training"], task_types, m["modality"])
            if why:
                raise ConfigError(f"{at}: model {model} does not use it — {why}")
            import jsonschema

            schema = SCHEMA["$defs"]["training"]["properties"][key]
            if schema.get("type") == "integer" and kind in ("uniform", "loguniform"):
                raise ConfigError(f"{at}.{kind}: training.{key} is a whole number; draw it with int: [low, high]")
            for v in values:
                err = next(jsonschema.Draft202012Validator(schema).iter_errors(v), None)
                if err is not None:
                    raise ConfigError(f"{at}: {v!r} is not a valid training.{key} ({err.message})")
        elif key in MODEL_RESERVED_KEYS:
            raise ConfigError(f"{at}: {key} is not tunable (it says what the model is, not how it trains)")
        else:
            if m["arch"].startswith("hf:"):
                raise ConfigError(f"{at}: tune the training keys of hf: models ({', '.join(sorted(TRAINING_KEYS))}); "
                                  f"their builder options load a checkpoint")
            valid = builder_parameters(m["arch"], PROBE_INPUTS[m["modality"]]) or []
            if key not in valid and not m["arch"].startswith("timm:"):
                raise ConfigError(f"{at}: neither a key of training: nor an option of {m['arch']!r} (model {model})"
                                  f"{did_you_mean(key, [*TRAINING_KEYS, *valid])}")
            models.check_options(m["arch"], {**kwargs, key: values[0]}, PROBE_INPUTS[m["modality"]],
                                 key=at.rsplit(".", 1)[0])
            for v in values:  # every choice, both bounds and a value between them: built on the meta device
                problem = tn.build_problem(m["arch"], {**kwargs, key: v}, PROBE_INPUTS[m["modality"]])
                if problem and not tn.build_problem(m["arch"], kwargs, PROBE_INPUTS[m["modality"]]):
                    hint = (f" (a {kind} draw is a float: for a whole-number option use int: [low, high])"
                            if kind in ("uniform", "loguniform") and not float(v).is_integer() else "")
                    raise ConfigError(f"{at}: {v!r} is rejected by {m['arch']!r} (model {model}): {problem}{hint}")


def trial_specs(config: dict, task: str, model: str) -> list[dict]:
    """One spec per trial: the model's resolved spec (trial k trains with seed tuning.TRIAL_SEED + k) with trial k's
    values."""
    from finebench import tuning as tn

    specs = []
    for k, values in enumerate(tn.draws(config, task, model)):
        spec = tn.apply(resolve_spec(config, task, model, tn.TRIAL_SEED + k), values, TRAINING_KEYS)
        spec.pop("tuning", None)  # a trial does not depend on the budget: a larger one keeps the earlier trials
        specs.append({**spec, "trial": k, "tuned_values": values})
    return specs


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
