"""Hyperparameter tuning with the same budget for every model: search spaces, seeded static draws, selection on the
validation split, and the expected best validation score as a function of the budget.

The config's ``tuning:`` section (docs/guides/tuning.md) gives a ``budget`` of trials per (task, model), a sampler
and its seed, and search spaces: one per family by default (:data:`DEFAULT_SPACES`, overridable under
``tuning.spaces``), replaced for one model by its own ``models.<name>.tuning.space``. A space maps keys of
``training:`` or of the model's builder to a distribution:

    lr: {loguniform: [1.0e-4, 1.0e-2]}     weight_decay: {uniform: [0.0, 0.1]}
    hidden: {int: [64, 256]}               cell: {choice: [gru, lstm]}

- **Static draws.** :func:`draws` fixes every trial up front from ``(tuning.seed, task, model)``: independent
  uniform draws (``random``) or a scrambled Sobol sequence (``sobol``, scipy.stats.qmc), mapped through each
  dimension's distribution; floats keep 3 significant digits. The workflow's DAG is static, each trial an ordinary
  job of the one trainer (``results/tune/{task}/{model}/trial{k}/``: resume, Slurm and MLflow as for any run), and a
  larger budget keeps the earlier trials (the same first draws).
- **Checks and trial specs** live with the config's (finebench.config: ``check_tuning``, ``trial_specs``), which
  this module never imports.
- **Trial seeds.** Trial k trains with seed :data:`TRIAL_SEED` + k, never one of the final ``seeds:`` (the config
  check refuses an overlap): a final run never repeats the chosen trial, so the luck of the seed that won the
  selection does not enter the final scores.
- **Validation only.** A trial's spec carries ``trial: k``; the trainer then never evaluates the test split
  (finebench.train). :func:`select` picks the trial with the best validation score — the task type's selection key
  at the trial's best epoch (higher is better: validation accuracy, PSNR …) — and writes it to ``selected.json``,
  which the final ``seeds:`` runs read (``train --tuned``). It is read back checked (:func:`read_selection`): its
  task, model and tuning, a digest of its trials, its values inside the space — an edited or copied file is an
  error at the final run and at the tables, never a result "tuned on validation".
- **Expected validation performance** (Dodge et al. 2019, "Show Your Work"): :func:`expected_max` — the expected
  best validation score among n trials drawn from the N trials' empirical distribution, for n = 1 … N, ± its std.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from finebench.errors import ConfigError, FinebenchError, did_you_mean

DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
SAMPLERS = ("random", "sobol")
# Each family's search space when neither tuning.spaces nor the model's own tuning.space gives one: keys of
# training: only (every model takes them); the same learning-rate and weight-decay ranges for every family, two
# decades around the embedded suite's hand-set values (lr 2e-3, weight decay 0.05).
DEFAULT_SPACES = {
    "cnn": {"lr": {"loguniform": [1e-4, 1e-2]}, "weight_decay": {"loguniform": [1e-3, 0.2]}},
    "rnn": {"lr": {"loguniform": [1e-4, 1e-2]}, "weight_decay": {"loguniform": [1e-3, 0.2]}},
    "transformer": {"lr": {"loguniform": [1e-4, 1e-2]}, "weight_decay": {"loguniform": [1e-3, 0.2]},
                    "warmup_epochs": {"uniform": [0.0, 2.0]}},  # attention from scratch is sensitive to warm-up
    "other": {"lr": {"loguniform": [1e-4, 1e-2]}, "weight_decay": {"loguniform": [1e-3, 0.2]}},
}
# Pretrained hf: models are fine-tuned: a lower learning-rate range, whatever their family.
PRETRAINED_SPACE = {"lr": {"loguniform": [1e-5, 2e-4]}, "weight_decay": {"loguniform": [1e-3, 0.1]}}
TRIAL_SEED = 1000  # trial k's seed is TRIAL_SEED + k: apart from the final seeds (0, 1, 2 …)
TUNING_DEFAULTS: dict[str, Any] = {"budget": 8, "sampler": "random", "seed": 0, "runs_per_job": 4, "tasks": None,
                                   "spaces": {}}


# ---------------------------------------------------------------------------------------------------------------
# What is tuned


def settings(config: dict) -> dict | None:
    """The config's ``tuning:`` with its defaults, or None when it has none (nothing is tuned)."""
    if config.get("tuning") is None:
        return None
    return {**TUNING_DEFAULTS, **config["tuning"]}  # `tuning: {}`: every default


def is_tuned(config: dict, task: str, model: str) -> bool:
    tuning = settings(config)
    if tuning is None or config["models"][model].get("tuning") is False:
        return False
    return tuning["tasks"] is None or task in tuning["tasks"]


def family_of(config: dict, model: str) -> str:
    from finebench import models

    m = config["models"][model]
    return m.get("family") or models.default_family(m["arch"]) or "other"


def space_of(config: dict, model: str) -> tuple[dict, str]:
    """(the model's search space, where it comes from: the config key, or "the default space of family X")."""
    m, tuning = config["models"][model], settings(config) or TUNING_DEFAULTS
    own = m.get("tuning") if isinstance(m.get("tuning"), dict) else {}
    if own.get("space"):
        return own["space"], f"models.{model}.tuning.space"
    family = family_of(config, model)
    if family in (tuning.get("spaces") or {}):
        return tuning["spaces"][family], f"tuning.spaces.{family}"
    if m["arch"].startswith("hf:"):
        return PRETRAINED_SPACE, "the default space of pretrained hf: models"
    return DEFAULT_SPACES[family], f"the default space of family {family}"


def budget_of(config: dict, model: str) -> int:
    m, tuning = config["models"][model], settings(config) or TUNING_DEFAULTS
    own = m.get("tuning") if isinstance(m.get("tuning"), dict) else {}
    return int(own.get("budget", tuning["budget"]))


def identity(config: dict, task: str, model: str) -> dict:
    """What the tuning of one (task, model) is: its space, budget, sampler and seed (in the final runs' spec, so that
    changing any of them reruns them — and only them)."""
    tuning = settings(config)
    space, _ = space_of(config, model)
    assert tuning is not None  # asked only for a tuned (task, model)
    return {"space": space, "budget": budget_of(config, model), "sampler": tuning["sampler"], "seed": tuning["seed"]}


# ---------------------------------------------------------------------------------------------------------------
# Checks (before any job; every message starts with the config key)


def dimensions(space: object, where: str) -> list[tuple[str, str, list]]:
    """[(key, distribution, arguments)] of a space, sorted by key; each checked for its form."""
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{where}: a mapping of keys to distributions, e.g. lr: {{loguniform: [1.0e-4, 1.0e-2]}}")
    dims = []
    for key in sorted(space):
        spec, at = space[key], f"{where}.{key}"
        if not isinstance(spec, dict) or len(spec) != 1:
            raise ConfigError(f"{at}: one distribution, e.g. {{loguniform: [low, high]}} (one of "
                              f"{', '.join(DISTRIBUTIONS)})")
        (kind, args), = spec.items()
        if kind not in DISTRIBUTIONS:
            raise ConfigError(f"{at}.{kind}: unknown distribution{did_you_mean(str(kind), DISTRIBUTIONS)}; valid: "
                              f"{', '.join(DISTRIBUTIONS)}")
        if kind == "choice":
            if not isinstance(args, list) or not args:
                raise ConfigError(f"{at}.choice: a non-empty list of values")
        else:
            numbers = isinstance(args, list) and len(args) == 2 and all(
                isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in args)
            if not numbers:
                raise ConfigError(f"{at}.{kind}: [low, high], two finite numbers (got {args!r})")
            low, high = args
            if kind == "int" and not all(float(a).is_integer() for a in args):
                raise ConfigError(f"{at}.int: whole-number bounds (got {args!r})")
            if low >= high:
                raise ConfigError(f"{at}.{kind}: low {low!r} >= high {high!r}; write [low, high] with low < high")
            if kind == "loguniform" and low <= 0:
                raise ConfigError(f"{at}.loguniform: low {low!r} <= 0; a log-uniform range needs positive bounds")
        dims.append((key, kind, args))
    return dims


# Training keys that only some runs use: (the key, why a model may not use it)
def unused_training_key(key: str, training: dict, task_types: set, modality: str) -> str | None:
    from finebench.tasks import TASK_TYPES, get

    if key == "momentum" and training.get("optimizer") != "sgd":
        return f"momentum is used by optimizer sgd only (this model's runs use {training.get('optimizer')})"
    readers = [tt.name for tt in TASK_TYPES.values() if key in tt.training]  # declared by the types that read it
    if readers and not task_types & set(readers):
        return (f"{key} is read by {' and '.join(get(t).title for t in readers)} tasks only (this model runs "
                f"{', '.join(sorted(get(t).title for t in task_types))} tasks)")
    if key == "spec_augment" and modality != "speech":
        return "spec_augment masks spectrograms: speech models only"
    if key in ("eval_batch_size", "keep_checkpoint", "max_train_batches", "compile", "channels_last", "precision",
               "cudnn_benchmark", "tf32", "checkpoint_minutes"):
        return f"{key} does not change what a model learns: nothing to tune"
    return None


def build_problem(arch: str, kwargs: dict, input_info: dict) -> str | None:
    """Why building ``arch`` with ``kwargs`` on the meta device (no weights) fails, or None."""
    import torch

    from finebench.models import build_model

    info = {**input_info, "stored_size": None}
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build_model(arch, {**kwargs, "pretrained": False} if arch.startswith("timm:") else kwargs, info, 2)
    except Exception as exc:  # noqa: BLE001 — any builder's refusal, shown as it words it
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


# ---------------------------------------------------------------------------------------------------------------
# Draws


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "little")


def unit_points(n: int, d: int, sampler: str, seed: int) -> np.ndarray:
    """[n, d] points in [0, 1): i.i.d. uniform (random) or scrambled Sobol; the first n of a longer draw."""
    if sampler == "sobol":
        from scipy.stats import qmc

        m = max(1, math.ceil(math.log2(max(n, 1))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's own power-of-two warning: check() words it for the config
            return qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)[:n]
    return np.random.default_rng(seed).random((n, d))


def transform(u: float, kind: str, args):
    if kind == "loguniform":
        lo, hi = math.log(args[0]), math.log(args[1])
        return float(f"{math.exp(lo + u * (hi - lo)):.3g}")
    if kind == "uniform":
        return float(f"{args[0] + u * (args[1] - args[0]):.3g}")
    if kind == "int":
        lo, hi = int(args[0]), int(args[1])
        return min(hi, lo + int(u * (hi - lo + 1)))
    return args[min(len(args) - 1, int(u * len(args)))]


def draws(config: dict, task: str, model: str) -> list[dict]:
    """Every trial's values ({key: value}), fixed by (tuning.seed, task, model) and the space."""
    tuning = settings(config)
    space, where = space_of(config, model)
    dims = dimensions(space, where)
    assert tuning is not None  # asked only for a tuned (task, model)
    points = unit_points(budget_of(config, model), len(dims), tuning["sampler"], _seed(tuning["seed"], task, model))
    return [{key: transform(float(u), kind, args) for (key, kind, args), u in zip(dims, row)} for row in points]


def apply(spec: dict, values: dict, training_keys) -> dict:
    """``spec`` with the values set: training keys into ``training``, the rest into ``model_kwargs``."""
    out = copy.deepcopy(spec)
    for key, v in values.items():
        (out["training"] if key in training_keys else out["model_kwargs"])[key] = v
    return out


def chunks(config: dict, task: str, model: str) -> list[range]:
    """The trials of (task, model) in groups of ``tuning.runs_per_job``: one job (one process) per group."""
    n, tuning = budget_of(config, model), settings(config)
    assert tuning is not None  # asked only for a tuned (task, model)
    size = int(tuning["runs_per_job"])
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


# ---------------------------------------------------------------------------------------------------------------
# Selection and the expected best score


def select(trials: list[dict], tuning: dict, out: str | Path, experiment_file: str | Path | None = None,
           log_parent=None) -> dict:
    """The trial with the best validation score (``val_score``; ties: the lower trial index) -> ``out``
    (selected.json): its values, score and trial, every trial's score, and the expected-best curve. ``log_parent``
    (finebench.tracking.log_tuning_parent) files the MLflow parent run of the trials first."""
    from finebench.files import write_json_atomic
    from finebench.tasks.registry import LEGACY

    trials = sorted(trials, key=lambda m: m["trial"])
    if not trials:
        raise ConfigError("select-trials: no trials given")
    if len(trials) != tuning["budget"] or [t["trial"] for t in trials] != list(range(tuning["budget"])):
        raise ConfigError(f"select-trials: trials {[t['trial'] for t in trials]} given, the tuning has "
                          f"{tuning['budget']} (0 … {tuning['budget'] - 1})")
    scores = trial_scores(trials)
    if not np.isfinite(scores).any():
        raise ConfigError(f"{trials[0]['task']}/{trials[0]['model']}: no trial has a finite validation score")
    best = best_trial(scores)
    rows = [{"trial": t["trial"], "values": t["tuned_values"], "val_score": t.get("val_score"),
             "status": t.get("status", "FINISHED"), "train_seconds": t.get("train_seconds"),
             "mlflow_run_id": t.get("mlflow_run_id")} for t in trials]
    result = {"task": trials[0]["task"], "model": trials[0]["model"], "family": trials[0]["family"],
              "task_type": trials[0].get("task_type", LEGACY),
              "identity": tuning, "identity_hash": identity_hash(tuning), "budget": len(trials),
              "sampler": tuning["sampler"], "trial": trials[best]["trial"], "values": trials[best]["tuned_values"],
              "val_score": float(scores[best]), "val_metric": trials[best].get("val_metric", ""),
              "trials": rows, "trials_digest": trials_digest(rows),
              "diverged": sum(t.get("status") == "DIVERGED" for t in trials), "evp": evp_curve(scores)}
    if log_parent is not None and experiment_file is not None:
        result["mlflow_parent_run_id"] = log_parent(experiment_file, result)
    write_json_atomic(out, result)
    return result


def identity_hash(tuning: dict) -> str:
    return hashlib.sha256(json.dumps(tuning, sort_keys=True).encode()).hexdigest()[:12]


def trial_scores(trials: list[dict]) -> np.ndarray:
    """The trials' validation scores, NaN where a trial has none (diverged)."""
    return np.array([np.nan if t.get("val_score") is None else t["val_score"] for t in trials], dtype=float)


def best_trial(scores: np.ndarray) -> int:
    """The index of the best finite score; ties: the lowest index."""
    return int(np.argmax(np.where(np.isfinite(scores), scores, -np.inf)))


def evp_curve(scores: np.ndarray) -> list[dict]:
    """E[best of n] over the trials with a score: a diverged trial (no score) is left out, and counted in the tables."""
    mean, std = expected_max(scores[np.isfinite(scores)])
    return [{"n": n + 1, "mean": float(a), "std": float(b)} for n, (a, b) in enumerate(zip(mean, std))]


def trials_digest(trials: list[dict]) -> str:
    """Of every trial's values, score, status, cost and run as ``selected.json`` lists them: a trial edited
    afterwards no longer matches it."""
    return hashlib.sha256(json.dumps(trials, sort_keys=True).encode()).hexdigest()[:16]


def expected_max(scores) -> tuple[np.ndarray, np.ndarray]:
    """Expected maximum of n draws with replacement from the scores' empirical distribution, n = 1 … N, and its
    standard deviation (Dodge et al. 2019): with the scores sorted v(1) <= … <= v(N), P(max = v(i)) =
    (i/N)^n − ((i−1)/N)^n, so E[max] = Σ v(i) P(max = v(i)) and Var = Σ v(i)² P(max = v(i)) − E[max]²."""
    v = np.sort(np.asarray(scores, dtype=float))
    N = len(v)
    i = np.arange(1, N + 1)
    means, stds = [], []
    for n in range(1, N + 1):
        p = (i / N) ** n - ((i - 1) / N) ** n
        m = float(p @ v)
        means.append(m)
        stds.append(math.sqrt(max(0.0, float(p @ v**2) - m * m)))
    return np.array(means), np.array(stds)


def tang_weights(N: int) -> np.ndarray:
    """[n − 1, i − 1] = C(i − 1, n − 1) / C(N, n) for i ≥ n, else 0: the probability that the i-th smallest of N
    scores is the largest of n drawn from them without replacement."""
    return np.array([[math.comb(i - 1, n - 1) / math.comb(N, n) if i >= n else 0.0 for i in range(1, N + 1)]
                     for n in range(1, N + 1)])


def unbiased_expected_max(scores) -> np.ndarray:
    """E[best of n], n = 1 … N, without replacement (Tang et al. 2020, "Showing Your Work Doesn't Always Work",
    ACL): Σ_{i ≥ n} C(i − 1, n − 1) / C(N, n) · v(i) with the scores sorted v(1) <= … <= v(N) — the mean of the
    best over every n-subset of the trials, an unbiased estimate of the expected best of n fresh trials, where
    Dodge et al.'s with-replacement estimate (:func:`expected_max`) is biased low for n near N; at n = N it is the
    best trial."""
    v = np.sort(np.asarray(scores, dtype=float))
    return tang_weights(len(v)) @ v if len(v) else np.array([])


BOOTSTRAP_DRAWS, BOOTSTRAP_SEED = 2000, 0


def bootstrap_expected_max(scores, draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED
                           ) -> tuple[np.ndarray, np.ndarray]:
    """The 95 % percentile-bootstrap interval of :func:`unbiased_expected_max` over the trials: ``draws`` resamples
    of the N scores with replacement (numpy's generator seeded with ``seed``: the same scores give the same
    interval), the estimate per resample, its 2.5th and 97.5th percentiles per n."""
    v = np.asarray(scores, dtype=float)
    if len(v) < 2:  # one trial: nothing to resample
        return v.copy(), v.copy()
    rng = np.random.default_rng(seed)
    est = np.sort(rng.choice(v, size=(draws, len(v)), replace=True), axis=1) @ tang_weights(len(v)).T
    lo, hi = np.percentile(est, [2.5, 97.5], axis=0)
    return lo, hi


# ---------------------------------------------------------------------------------------------------------------
# A selection read back (the tuned final runs, the tables): what select wrote for this (task, model), or an error

SELECTION_FIX = ("delete it and rerun the workflow: Snakemake's select_trials step writes it again from the trials' "
                 "results beside it (trials*.json; no trial is retrained), then reruns the final runs that read it. "
                 "To set values by hand, give the model `tuning: false` and write them in its training: or options")


def _round3(x: float) -> float:
    return float(f"{x:.3g}")  # as transform keeps a float draw


def value_problem(value, kind: str, args) -> str | None:
    """Why ``value`` is not a draw of the dimension ``{kind: args}`` (its type, inside its bounds, among its
    choices), or None."""
    if kind == "choice":  # 1 == True == 1.0 in Python: the type must match as well
        if any(value == c and type(value) is type(c) for c in args):
            return None
        return f"{value!r} is not one of the choices {args!r}"
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{value!r} ({type(value).__name__}) is not a whole number, as int: {args!r} draws"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} ({type(value).__name__}) is not a number, as {kind}: {args!r} draws"
    # a float draw keeps 3 significant digits, which can round it past a bound of more digits: the bounds as rounded
    low, high = (int(args[0]), int(args[1])) if kind == "int" else (_round3(args[0]), _round3(args[1]))
    if not low <= value <= high:  # NaN is outside too
        return f"{value!r} is outside the searched range {kind}: {args!r}"
    return None


def values_problem(values, dims: list[tuple[str, str, list]], where: str) -> str | None:
    """Why ``values`` ({key: value}) are not one draw of the space ``dims``: exactly its keys, each a draw."""
    if not isinstance(values, dict):
        return f"{where}: {values!r} is not a mapping of the space's keys to values"
    keys = [key for key, _, _ in dims]
    for key in values:
        if key not in keys:
            return (f"{where}.{key}: not a key of the search space ({', '.join(keys)}){did_you_mean(str(key), keys)}"
                    f" — a selection sets exactly the space's keys")
    for key, kind, args in dims:
        if key not in values:
            return f"{where}: no {key}, a key of the search space ({', '.join(keys)})"
        problem = value_problem(values[key], kind, args)
        if problem:
            return f"{where}.{key} = {problem}"
    return None


def selection_problem(selected, task: str | None = None, model: str | None = None,
                      identity: dict | None = None) -> str | None:
    """Why ``selected`` (a selection file's content) is not what :func:`select` wrote for the tuning ``identity`` of
    (``task``, ``model``) — each of them checked where given — or None. Checked: its task and model; its identity and
    hash; the trials (0 … budget − 1) against the digest written with them; every value inside the space, of the
    right type and under the space's keys only; the chosen trial the best one and its values that trial's; the
    expected-best curve the trials' own."""
    if not isinstance(selected, dict):
        return "not a selection (a JSON object written by `finebench select-trials`)"
    missing = [k for k in ("task", "model", "identity", "identity_hash", "budget", "sampler", "trial", "values",
                           "val_score", "trials", "trials_digest", "evp") if k not in selected]
    if missing:
        return f"no {', '.join(missing)}: not written by this finebench's `select-trials` (an older one, or edited)"
    if (task, model) != (None, None) and (selected["task"], selected["model"]) != (task, model):
        return (f"chosen for {selected['task']}/{selected['model']}, not {task}/{model} (a copy of another "
                f"model's selection?)")
    ident = selected["identity"]
    if not isinstance(ident, dict) or selected["identity_hash"] != identity_hash(ident):
        return "its identity (space, budget, sampler, seed) does not match its identity_hash: edited"
    if identity is not None and selected["identity_hash"] != identity_hash(identity):
        return (f"chosen by another tuning of {selected['task']}/{selected['model']} than this run's (space, budget, "
                f"sampler or seed differ)")
    try:
        dims = dimensions(ident.get("space"), "identity.space")
    except ConfigError as exc:
        return str(exc)
    trials = selected["trials"]
    budget = ident.get("budget")
    if not isinstance(trials, list) or not all(isinstance(t, dict) for t in trials) or \
            [t.get("trial") for t in trials] != list(range(len(trials))) or len(trials) != budget or \
            selected["budget"] != budget or selected["sampler"] != ident.get("sampler"):
        return (f"its trials, budget or sampler are not those of its identity (budget {budget!r}, trials 0 … "
                f"budget − 1)")
    problem = values_problem(selected["values"], dims, "values")
    if problem:
        return problem
    if selected["trials_digest"] != trials_digest(trials):
        return "its trials do not match the digest written with them (trials_digest): a trial's values or score edited"
    for t in trials:
        problem = values_problem(t.get("values"), dims, f"trials[{t['trial']}].values")
        if problem:
            return problem
        score = t.get("val_score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            return f"trials[{t['trial']}].val_score = {score!r}: not a number"
    scores = trial_scores(trials)
    k = selected["trial"]
    if not np.isfinite(scores).any() or type(k) is not int or k != best_trial(scores):
        return f"trial {k!r} is chosen, but the best validation score is trial {best_trial(scores)}'s"
    if selected["values"] != trials[k]["values"] or selected["val_score"] != trials[k].get("val_score"):
        return (f"values {selected['values']} (score {selected['val_score']}) are not those of trial {k}, the one "
                f"chosen ({trials[k]['values']}, score {trials[k].get('val_score')})")
    evp = evp_curve(scores)
    try:
        given = [(e["n"], e["mean"], e["std"]) for e in selected["evp"]]
        same = [n for n, _, _ in given] == [e["n"] for e in evp] and np.allclose(
            [[m, sd] for _, m, sd in given], [[e["mean"], e["std"]] for e in evp], rtol=1e-9, atol=1e-12)
    except (TypeError, KeyError, ValueError):
        same = False
    if not same:
        return "its expected-best curve (evp) is not the one its trials' scores give: edited"
    return None


def read_selection(path: str | Path, task: str | None = None, model: str | None = None,
                   identity: dict | None = None) -> dict:
    """The selection in ``path`` (:func:`selection_problem` checks it), or a FinebenchError naming the file and the
    fix."""
    path = Path(path)
    problem: str | None
    try:
        selected = json.loads(path.read_text())
    except FileNotFoundError:
        raise FinebenchError(f"{path}: missing — the select_trials step writes it (python -m finebench "
                             f"select-trials)") from None
    except ValueError as exc:
        selected, problem = None, f"not valid JSON ({exc})"
    else:
        problem = selection_problem(selected, task, model, identity)
    if problem:
        named = selected if isinstance(selected, dict) else {}
        pair = f"{task or named.get('task', '?')}/{model or named.get('model', '?')}"
        raise FinebenchError(f"{path}: {problem}. This file is not what `finebench select-trials` wrote for {pair} "
                             f"— {SELECTION_FIX}")
    return selected


def workflow_pair(path: str | Path) -> tuple[str | None, str | None]:
    """(task, model) that a selection's place in the workflow's layout (``{results}/tune/{task}/{model}/
    selected.json``) names; (None, None) elsewhere."""
    p = Path(path)
    if p.name == "selected.json" and p.parent.parent.parent.name == "tune":
        return p.parent.parent.name, p.parent.name
    return None, None


# ---------------------------------------------------------------------------------------------------------------
# Tables (finebench.report writes them when the workflow tunes: tuning.csv, evp.csv, tuning.md, {task}_evp.png)

TUNING_FILES = ("tuning.csv", "evp.csv", "tuning.md")


def load_selected(paths) -> list[dict]:
    """The selections, each checked (:func:`read_selection`: a file edited, or copied from another model's folder,
    is refused), and one per (task, model)."""
    selected: list[dict] = []
    seen: dict[str, str | Path] = {}  # pair: the first selection's path
    for p in paths:
        s = read_selection(p, *workflow_pair(p))
        pair = f"{s['task']}/{s['model']}"
        if pair in seen:
            raise FinebenchError(f"{p}: a second selection of {pair} (the first: {seen[pair]}): one of them is a copy "
                                 f"of the other — {SELECTION_FIX}")
        seen[pair] = p
        selected.append(s)
    return selected


def trials_table(selected: list[dict]):
    """One row per trial: its values (one column per key), validation score, and whether it was chosen."""
    import pandas as pd

    rows = [{"task": s["task"], "model": s["model"], "family": s["family"], "trial": t["trial"],
             "val_metric": s["val_metric"], "val_score": t["val_score"], "status": t.get("status", "FINISHED"),
             "chosen": t["trial"] == s["trial"],
             **t["values"], "train_seconds": t["train_seconds"], "mlflow_run_id": t["mlflow_run_id"],
             "mlflow_parent_run_id": s.get("mlflow_parent_run_id")}
            for s in selected for t in s["trials"]]
    return pd.DataFrame(rows)


def evp_table(selected: list[dict]):
    """Per tuned model and n: Dodge et al.'s E[best of n] ± its std (``evp_mean``, ``evp_std``: selected.json's),
    Tang et al.'s unbiased estimate (``evp_unbiased``) and its 95 % bootstrap interval over the trials
    (``evp_lo``, ``evp_hi``), all over the trials with a score."""
    import pandas as pd

    rows = []
    for s in selected:
        scores = trial_scores(s["trials"])
        scores = scores[np.isfinite(scores)]
        unbiased, (lo, hi) = unbiased_expected_max(scores), bootstrap_expected_max(scores)
        rows += [{"task": s["task"], "model": s["model"], "family": s["family"], "val_metric": s["val_metric"],
                  "budget": s["budget"], "n": e["n"], "evp_mean": e["mean"], "evp_std": e["std"],
                  "evp_unbiased": unbiased[k], "evp_lo": lo[k], "evp_hi": hi[k]} for k, e in enumerate(s["evp"])]
    return pd.DataFrame(rows)


def score_column(evp) -> str:
    """The estimate the orders use: Tang et al.'s unbiased E[best of n] where the table has it, else Dodge et al.'s."""
    return "evp_unbiased" if "evp_unbiased" in evp else "evp_mean"


def family_orders(evp) -> list[tuple[int, list[str]]]:
    """[(n, families best first)] for n = 1 … the smallest budget of the task: each family scored by its best model's
    expected best validation score with n trials."""
    col, out = score_column(evp), []
    for n, g in evp.groupby("n", sort=True):
        if len(g) < evp.groupby("model").ngroups:  # a model with a smaller budget: orders end with it
            break
        best = g.groupby("family")[col].max().sort_values(ascending=False, kind="stable")
        out.append((int(n), list(best.index)))
    return out


def family_intervals(evp) -> dict[tuple[int, str], tuple[float, float]]:
    """{(n, family): the bootstrap interval of its best model's estimate at n}; {} without intervals."""
    if "evp_lo" not in evp:
        return {}
    col = score_column(evp)
    best = evp.loc[evp.groupby(["n", "family"])[col].idxmax()]
    return {(int(r["n"]), r["family"]): (float(r["evp_lo"]), float(r["evp_hi"])) for _, r in best.iterrows()}


def order_sentence(evp) -> str:
    """Where the order of the families by expected best validation score holds and where it flips, e.g.
    "n = 1–5: cnn > transformer; from n = 6: transformer > cnn — transformer overtakes cnn from n = 6". With the
    bootstrap intervals (``evp_lo``, ``evp_hi``) a flip is claimed only where the intervals separate the two families
    both before and after it; a pass inside the intervals is said to be one."""
    orders = family_orders(evp)
    if not orders:
        return ""
    if len(orders[0][1]) < 2:
        return f"One family ({orders[0][1][0]}): no order to compare."
    ci = family_intervals(evp)

    def ahead(f: str, g: str, ns) -> bool:  # f's interval above g's at some n of ns
        return any(ci[n, f][0] > ci[n, g][1] for n in ns if (n, f) in ci and (n, g) in ci)

    segments: list[list[Any]] = []  # [first n, last n, order]
    for n, order in orders:
        if segments and segments[-1][2] == order:
            segments[-1][1] = n
        else:
            segments.append([n, n, order])
    if len(segments) == 1:
        first, last, order = segments[0]
        text = (f"The order of the families holds at every budget from n = {first} to {last} trials: "
                f"{' > '.join(order)}.")
        if ci:
            ns = range(first, last + 1)
            close = [f"{f} and {g}" for f, g in zip(order, order[1:]) if not ahead(f, g, ns)]
            if close:
                text += (f" The 95 % bootstrap intervals of {'; of '.join(close)} overlap at every n: these trials do "
                         "not separate them.")
        return text
    parts = [f"n = {a}" + (f"–{b}" if b > a else "") + f": {' > '.join(o)}" for a, b, o in segments]
    flips = []
    last = segments[-1][1]
    for (_, _, before), (start, _, after) in zip(segments, segments[1:]):
        for f in after:
            passed = [g for g in before if before.index(g) < before.index(f) and after.index(g) > after.index(f)]
            if not passed:
                continue
            if not ci:
                flips.append(f"{f} overtakes {', '.join(passed)} from n ≥ {start}")
                continue
            for g in passed:
                if ahead(g, f, range(segments[0][0], start)) and ahead(f, g, range(start, last + 1)):
                    flips.append(f"{f} overtakes {g} from n ≥ {start} (the 95 % bootstrap intervals separate "
                                 "them before and after)")
                else:
                    flips.append(f"{f} passes {g} from n ≥ {start} by the estimates, within the 95 % bootstrap "
                                 "intervals: not a flip these trials show")
    return "; ".join(parts) + (". The order changes: " if ci else ". The order flips: ") + "; ".join(flips) + "."


def tuning_markdown(selected: list[dict], evp) -> str:
    from tabulate import tabulate

    parts = ["# Tuning: the same budget for every model", "",
             "Each tuned model ran `budget` trials with values drawn up front by a seeded sampler (finebench.tuning), "
             "each trained like a final run but scored on the validation split only; the trial with the best "
             "validation score gave the values of the final seed runs (the leaderboard says tuned or hand-set). "
             "E[best of n]: the expected best validation score of n trials, estimated without replacement from the "
             "model's N trials (Tang et al. 2020, \"Showing Your Work Doesn't Always Work\": unbiased, where Dodge "
             "et al. 2019's with-replacement estimate, kept in evp.csv as evp_mean ± evp_std, is biased low for n "
             f"near N), with its 95 % percentile-bootstrap interval over the trials ({BOOTSTRAP_DRAWS} resamples, "
             f"seed {BOOTSTRAP_SEED}); the family order uses each family's best model at each n, and a change of "
             "order counts as a flip only where the intervals separate the two families before and after it. These "
             "are validation scores: the test split never chose anything.", ""]
    for task in dict.fromkeys(s["task"] for s in selected):
        mine = [s for s in selected if s["task"] == task]
        e = evp[evp["task"] == task]
        metric = mine[0]["val_metric"]
        rows = []
        for s in sorted(mine, key=lambda s: -s["val_score"]):
            curve = {int(r["n"]): r for _, r in e[e["model"] == s["model"]].iterrows()}
            top = max(curve)  # the budget, less the trials that diverged
            mid = max(1, top // 2)
            budget = f"{s['budget']}" + (f" ({s['diverged']} diverged)" if s.get("diverged") else "")
            rows.append([s["model"], s["family"], budget, s["sampler"], s["trial"],
                         ", ".join(f"{k} {v}" for k, v in s["values"].items()), f"{s['val_score']:.4f}",
                         *(f"{curve[n]['evp_unbiased']:.4f} [{curve[n]['evp_lo']:.4f}, {curve[n]['evp_hi']:.4f}]"
                           for n in (1, mid, top))])
        headers = ["model", "family", "budget", "sampler", "chosen trial", "chosen values", f"best {metric}",
                   "E[best of 1]", "E[best of N/2]", "E[best of N]"]
        if max(s["budget"] for s in mine) < 4:  # N/2 would repeat n = 1
            headers.remove("E[best of N/2]")
            rows = [r[:8] + r[9:] for r in rows]
        parts += [f"## {task}", "", tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), "",
                  order_sentence(e), ""]
    return "\n".join(parts)


def plot_evp(evp, task: str, path: Path) -> Path:
    from finebench.plots import FAMILY_COLORS, _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = ["-", "--", ":", "-."]
    seen: dict = {}
    for model, g in evp[evp["task"] == task].groupby("model", sort=False):
        family = g["family"].iloc[0]
        color = FAMILY_COLORS.get(family, "tab:gray")
        style = styles[seen.setdefault(family, 0) % len(styles)]
        seen[family] += 1
        ax.plot(g["n"], g["evp_unbiased"], style, color=color, label=f"{model} ({family})", marker="o", ms=3)
        ax.fill_between(g["n"], g["evp_lo"], g["evp_hi"], color=color, alpha=0.12)
    metric = evp[evp["task"] == task]["val_metric"].iloc[0]
    ax.set_xlabel("tuning budget n (trials)")
    ax.set_ylabel(f"expected best {metric} (95 % bootstrap band)")
    ax.set_title(f"{task}: expected best validation score vs budget")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_tables(selected_files, out_dir: str | Path, plots_dir: str | Path | None) -> dict:
    """tuning.csv, evp.csv, tuning.md (and {task}_evp.png) from the selections."""
    selected = load_selected(selected_files)
    out_dir = Path(out_dir)
    trials, evp = trials_table(selected), evp_table(selected)
    trials.to_csv(out_dir / "tuning.csv", index=False)
    evp.to_csv(out_dir / "evp.csv", index=False)
    (out_dir / "tuning.md").write_text(tuning_markdown(selected, evp))
    if plots_dir is not None:
        for task in evp["task"].unique():
            plot_evp(evp, task, Path(plots_dir) / f"{task}_evp.png")
    return {"trials": trials, "evp": evp}


def board_fields(g) -> dict:
    """The leaderboard's ``tuning`` and ``tuned_values`` of one (task, model)'s runs (their metrics.json
    ``tuning``): "tuned: 8 trials (random), trial 3" and "lr=0.0031, weight_decay=0.012", or "hand-set"."""
    t = g["tuning"].iloc[0] if "tuning" in g else None
    if not isinstance(t, dict):
        return {"tuning": "hand-set", "tuned_values": ""}
    return {"tuning": f"tuned: {t['budget']} trials ({t['sampler']}), trial {t['trial']}",
            "tuned_values": ", ".join(f"{k}={v}" for k, v in t["values"].items())}


def note(g) -> str:
    """The line under a task's leaderboard saying which models were tuned (budget, chosen values) and which not."""
    if "tuning" not in g or not g["tuning"].fillna("hand-set").ne("hand-set").any():
        return ""
    rows = g[~g["is_baseline"].astype(bool)] if "is_baseline" in g else g
    tuned = [f"{r['model']} ({r['tuned_values']})" for _, r in rows.iterrows() if r["tuning"] != "hand-set"]
    hand = [r["model"] for _, r in rows.iterrows() if r["tuning"] == "hand-set"]
    budgets = sorted({r["tuning"].split(" trials")[0].split(": ")[1] for _, r in rows.iterrows()
                      if r["tuning"] != "hand-set"})
    return (f"Tuned on validation ({' / '.join(budgets)} trials per model; tuning.md): {'; '.join(tuned)}."
            + (f" Hand-set: {', '.join(hand)}." if hand else ""))
