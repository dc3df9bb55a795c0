"""The one trainer: fit on train, select the best epoch on val, evaluate test (and any further test sets) once,
write metrics.

    python -m finebench train --spec spec.json --data results/data/typefaces \
        --experiment-file results/mlflow/experiment.json --out results/runs/typefaces/resnet18/seed0

Read top to bottom: :func:`set_up` builds everything a run needs (seeded model, optimizer and schedule, loaders,
the task type's :class:`Objective`); :func:`train_one_epoch` runs one pass over the training split, timing the wait
for input (``data_seconds``) apart from the loop; :func:`evaluate` scores a split; :func:`assemble` turns the best
epoch's test evaluation into the result (:func:`trial_result` a trial's validation score; both through
:func:`build_result`); :func:`fit` runs them: :func:`train_epochs` (checkpointing as :mod:`finebench.checkpoint`
says), then a tuning trial's ending (:func:`trial_ending`) or a final run's (:func:`final_ending`, :func:`publish`).

- Same spec + same seed on the CPU gives identical metrics (seeded init, seeded shuffling and augmentation,
  deterministic kernels) — also across a kill and resume. On a GPU with bf16 units the forward pass runs under bf16
  autocast (``training.precision``: ``auto`` / ``bf16`` / ``fp32``; bf16 on the CPU too where asked).
- **Resume**: every ``training.checkpoint_minutes`` (default 5; 0: every epoch), on Slurm's time-limit warning and
  at the end (finebench.checkpoint), the run's whole state (model, optimizer, schedule, RNG states, history, best
  epoch so far and its weights — stored once —, its MLflow run id) is written atomically to ``checkpoint.pt``; a
  rerun of a killed job continues after the epoch last saved, in the same MLflow run. After the last epoch it is
  replaced by the small ``finished.pt`` (the
  best epoch's weights and the run's state, no optimizer), which the Snakefile's ``onsuccess`` hook removes
  (``finebench.workdir.discard_finished``) once a whole workflow run has succeeded: a job that Slurm marks failed
  *after* training (its time limit hit while Snakemake wraps up) is rerun as a re-evaluation, not from epoch 1.
  ``training.keep_checkpoint: true`` keeps the whole last ``checkpoint.pt`` instead. A checkpoint of another spec
  (``eval_batch_size`` aside), of other prepared data (its manifest differs, timing aside) or with weights that do not
  fit the model is ignored (and replaced).
- **Divergence**: a non-finite training loss fails the run (MLflow FAILED, the epoch and step in the error) instead of
  training on at chance level; no ``metrics.json`` is written, so it never ranks.

Outputs in ``--out``: ``spec.json``, ``history.csv`` (one row per epoch), ``confusion.csv`` / ``confusion.svg`` (test
split, best epoch; super-resolution: ``per_image.csv``, ``examples.npz``), ``finished.pt`` (see Resume) and
``metrics.json`` — written last and atomically (strict JSON), so its presence means the run completed.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from finebench import tasks
from finebench.checkpoint import SaveSchedule
from finebench.config import TRAINING_DEFAULTS, spec_hash
from finebench.data import Prepared
from finebench.errors import FinebenchError
from finebench.files import finite_or_none, full_disk_named, remove_stale_temporaries, replacing, write_json_atomic
from finebench.protocol import run_protocol
from finebench.tasks.objective import Objective
from finebench.workdir import FINISHED_CHECKPOINT as FINISHED

if TYPE_CHECKING:  # torch is imported where it is used, not at import time (start-up of the CLI and the workflow)
    import torch

    from finebench.tracking import Run

CHECKPOINT = "checkpoint.pt"
# Seconds this process spent training and evaluating (epochs, test, cost) over every fit() it ran: the rest of its
# wall time is fixed cost (start-up, data, model, MLflow), which `train` / `train-trials` print on exit
# (tests/benchmarks/tune_overhead.py reads those lines).
WORK_SECONDS = [0.0]


class Diverged(FinebenchError):
    """The training loss became NaN or infinite. ``mlflow_run_id``: the run it failed (set by :func:`train_epochs`), so
    that a diverged tuning trial is still filed under its search."""

    mlflow_run_id: str | None = None


# ---------------------------------------------------------------------------------------------------------------
# Small pieces


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(requested: str):
    import torch

    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise FinebenchError("device: cuda was requested but torch.cuda.is_available() is False")
        return torch.device("cuda")
    return torch.device("cpu")


def device_name(dev) -> str:
    """The accelerator's name (``NVIDIA H200``), or the CPU's model name from /proc/cpuinfo where there is one."""
    import platform

    import torch

    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def make_optimizer(model, t: dict):
    import torch

    from finebench.models import param_groups

    groups = param_groups(model, t["weight_decay"])
    for g in groups:  # a group may scale the lr (layer-wise decay of hf: models)
        g["lr"] = t["lr"] * g.pop("lr_scale", 1.0)
    if t["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=t["lr"], momentum=t["momentum"], nesterov=True)
    return torch.optim.AdamW(groups, lr=t["lr"])


def lr_factor(step: int, total: int, warmup: int, kind: str) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 0 (or constant)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------------------------------------------------------
# The objective: the task type's (finebench.tasks: its loss, evaluation, model selection, final artifacts)

# What the trainer asks of it, and the defaults of its optional hooks: finebench.tasks.objective.Objective.


# ---------------------------------------------------------------------------------------------------------------
# Set-up


@dataclass
class Job:
    """Everything one run needs; ``state`` is what a checkpoint saves."""

    spec: dict
    name: str
    dev: torch.device
    data: Prepared
    objective: Objective  # the task type's (finebench.tasks.objective)
    module: torch.nn.Module  # the nn.Module (state_dict, checkpoints, cost)
    model: torch.nn.Module  # what is called: the module, or its torch.compile'd wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    preprocess: dict
    steps_per_epoch: int
    threads: int
    precision: str  # "bf16" / "fp16" (autocast) or "fp32"
    device_name: str  # the GPU or CPU model (metrics.json, MLflow tag)
    scaler: torch.amp.GradScaler  # scales fp16 losses; with another precision a pass-through
    channels_last: bool = False  # training.channels_last resolved for this device and model (speed_settings)
    environment: dict | None = None  # tracking.provenance(), taken when the run starts
    state: dict = field(default_factory=lambda: {"epoch": 0, "history": [], "best": None, "best_state": None,
                                                 "train_seconds": 0.0, "data_seconds": 0.0, "samples_seen": 0,
                                                 "mlflow_run_id": None})

    @property
    def t(self) -> dict:
        return self.spec["training"]

    @property
    def n_params(self) -> int:
        """The model's parameter count: the run's first log line, its MLflow run, ``metrics.json``."""
        return sum(p.numel() for p in self.module.parameters())

    def autocast(self):
        import torch

        if self.precision in ("bf16", "fp16"):
            return torch.autocast(self.dev.type, dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)
        return contextlib.nullcontext()

    def loader(self, split: str, train: bool = False):
        """A split's input pipeline: the objective's (finebench.tasks.objective.Objective.loader)."""
        return self.objective.loader(self, split, train)


def set_up(spec: dict, data_dir: str | Path, device: str = "auto", threads: int = 1) -> Job:
    import torch

    from finebench.models import build_model, preprocessing

    torch.set_num_threads(threads)
    seed_everything(spec["seed"])
    dev = pick_device(device)
    t = spec["training"]
    if t.get("compile"):
        check_compiler(dev)
    if dev.type == "cpu":
        if t.get("compile"):
            torch.use_deterministic_algorithms(True, warn_only=True)
        else:
            # The public call also imports torch._inductor to configure torch.compile: 0.7 s (2.5 s on a busy
            # 2-core machine) of every job's start-up, measured, for a compiler this job does not use.
            torch._C._set_deterministic_algorithms(True, warn_only=True)
    data = Prepared(data_dir)
    from finebench.tracking import run_name

    log(f"{run_name(spec)}: prepared data {data_dir}: {data.verify()}")
    task_type = tasks.get(data.manifest.get("task_type", "classification"))
    module = build_model(spec["arch"], spec["model_kwargs"], data.input, data.num_classes).to(dev)
    channels_last = speed_settings(t, dev, spec.get("family"), data.input)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(module, t)
    objective = task_type.new_objective()
    steps = math.ceil(objective.train_size(data) / t["batch_size"])
    # batches of varying size (speech recognition's batch_seconds): the type counts them
    steps = objective.train_steps(data, t, torch.Generator().manual_seed(spec["seed"]), module) or steps
    if t.get("max_train_batches"):
        steps = min(steps, t["max_train_batches"])
    total, warmup = steps * t["epochs"], int(round(t["warmup_epochs"] * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, warmup, t["scheduler"]))
    precision = resolve_precision(t.get("precision"), dev)
    if precision == "bf16":  # LSTM/GRU in fp32: cuDNN's autocast would run them in fp16, unscaled (models/precision.py)
        from finebench.models.precision import fp32_recurrent

        fp32_recurrent(module)
    return Job(spec=spec, name=run_name(spec), dev=dev, data=data,
               objective=objective, module=module,
               # torch.compile's annotation says Callable; given an nn.Module it returns one (an OptimizedModule)
               model=torch.compile(module) if t.get("compile") else module,  # type: ignore[arg-type]
               optimizer=optimizer, scheduler=scheduler,
               generator=torch.Generator().manual_seed(spec["seed"]),
               preprocess=preprocessing(spec["arch"], spec["model_kwargs"], module), steps_per_epoch=steps,
               threads=threads, precision=precision, device_name=device_name(dev),
               scaler=torch.amp.GradScaler(dev.type, enabled=precision == "fp16"), channels_last=channels_last)


def speed_settings(t: dict, dev, family: str | None, inputs: dict) -> bool:
    """Apply the CUDA speed keys of ``training:`` (cudnn_benchmark, tf32) and resolve channels_last, which it returns:
    ``auto`` is on for the cnn family's image / spectrogram models on CUDA. On the CPU nothing changes (its
    deterministic kernels keep every result's digits)."""
    import torch

    asked = t.get("channels_last", "auto")
    if dev.type != "cuda":
        return asked is True
    torch.backends.cudnn.benchmark = bool(t.get("cudnn_benchmark", True))
    tf32 = bool(t.get("tf32", True))
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    if asked == "auto":
        return family == "cnn" and inputs.get("kind") in ("image", "spectrogram")
    return bool(asked)


def check_compiler(dev) -> None:
    """torch.compile builds its kernels with the system's compiler: Inductor (CPU) runs ``$CXX`` or ``g++``, Triton
    (CUDA) ``$CC``, ``gcc`` or ``clang``. Without one the run would fail in its first step with a long traceback."""
    import shutil

    cpu = dev.type == "cpu"
    env, names, kind = ("CXX", ("g++",), "C++") if cpu else ("CC", ("gcc", "clang"), "C")
    if os.environ.get(env) or any(shutil.which(name) for name in names):
        return
    raise FinebenchError(f"training.compile: torch.compile needs a {kind} compiler on {dev.type} (${env} or "
                         f"{' / '.join(names)} on PATH; none found) — install one (Debian: apt-get install "
                         f"{'g++' if cpu else 'gcc'}) or set training.compile: false")


def resolve_precision(asked: str | None, dev) -> str:
    """``training.precision``: ``auto`` (the default) is bf16 autocast on a GPU with bf16 units (NVIDIA compute
    capability 8.0+: A100, H100, RTX 30xx on; AMD), fp32 on older GPUs (V100, T4: bf16 would be emulated, slower than
    fp32) and elsewhere; ``bf16`` autocasts whatever the device (CPU: fast with AMX / AVX512-BF16 units, emulated and
    slow elsewhere); ``fp32`` never autocasts (e.g. to compare with a paper trained in fp32, or to rule out bf16 when a
    run diverges); ``fp16`` autocasts to float16 with a loss scaler (torch.amp.GradScaler), for GPUs whose tensor
    cores have no bf16 (V100, T4)."""
    import torch

    if asked in (None, "auto"):
        return "bf16" if dev.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    if asked not in ("bf16", "fp16", "fp32"):
        raise FinebenchError(f"training.precision: unknown {asked!r}; valid: auto, bf16, fp16, fp32")
    return asked


# ---------------------------------------------------------------------------------------------------------------
# One epoch, evaluation


def train_one_epoch(job: Job, epoch: int, show_progress: bool) -> dict:
    """One pass over the training split. Returns the epoch's training figures; raises Diverged on a non-finite loss.
    On CUDA the loss is summed and checked on the device (no host sync per step); on the CPU a sync is free."""
    import torch
    from tqdm import tqdm

    t, model, on_cuda = job.t, job.model, job.dev.type == "cuda"
    model.train()
    loader = job.loader("train", train=True)
    loss_sum = torch.zeros((), dtype=torch.float64, device=job.dev) if on_cuda else 0.0
    first_bad = torch.full((), -1, dtype=torch.long, device=job.dev) if on_cuda else -1
    seen, t0 = 0, time.perf_counter()
    bar = tqdm(loader, total=len(loader), desc=f"{job.name} epoch {epoch}/{t['epochs']}", disable=not show_progress,
               leave=False)
    for step, (x, y) in enumerate(bar, 1):
        with job.autocast():
            loss = job.objective.loss(model(x), y, t)
        job.optimizer.zero_grad(set_to_none=True)
        job.scaler.scale(loss).backward()  # fp16: scaled against underflow; otherwise loss.backward()
        if t["grad_clip"]:
            job.scaler.unscale_(job.optimizer)
            torch.nn.utils.clip_grad_norm_(job.module.parameters(), t["grad_clip"])
        job.scaler.step(job.optimizer)  # fp16: skipped when a gradient overflowed
        job.scaler.update()
        job.scheduler.step()
        if on_cuda:
            detached = loss.detach()
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(detached), step, first_bad)
            loss_sum += detached.double() * len(y)
        else:
            value = loss.item()
            if not math.isfinite(value):
                first_bad = step
                break
            loss_sum += value * len(y)
        seen += len(y)
        if show_progress:
            bar.set_postfix(loss=f"{float(loss):.3f}")
    if on_cuda:
        torch.cuda.synchronize()
    if int(first_bad) >= 0:
        raise Diverged(f"training diverged: non-finite loss at epoch {epoch}, step {int(first_bad)} of "
                       f"{len(loader)} (lr {t['lr']}) — lower training.lr, add training.grad_clip or warm-up"
                       + (" (fp16 overflows where bf16 does not: try training.precision bf16 or fp32)"
                          if job.precision == "fp16" else ""))
    seconds = time.perf_counter() - t0
    return {"train_loss": float(loss_sum) / max(seen, 1), "train_seconds": seconds, "data_seconds": loader.data_seconds,
            "samples": seen}


def evaluate(job: Job, split: str) -> dict:
    return job.objective.evaluate(job.model, job.loader(split), job.autocast, job.data.num_classes)


@contextlib.contextmanager
def memory_hint(job: Job, doing: str, batch: int | None = None):
    """Turn the accelerator's out-of-memory error into one that says which key to lower, and where. ``doing``:
    "training", "evaluating" or "measuring cost" (forward passes on a batch of ``batch`` test inputs)."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        key = "batch_size" if doing == "training" else "eval_batch_size"
        own = {"evaluating": job.objective.eval_memory_advice,
               "measuring cost": job.objective.cost_memory_advice}.get(doing)
        now = f"now {job.t[key]}" + (f", {batch} in this measurement" if batch is not None else "")
        advice = own or (
            f"lower training.{key} ({now}) where this run gets it: models.{job.spec['model']}.training, "
            f"tasks.{job.spec['task']}.training or the top-level training: (a model's entry wins over its task's, "
            f"the task's over the top level)" + ("" if key == "batch_size" else
                                                   "; the rerun keeps the trained epochs (checkpoint)"))
        raise FinebenchError(f"{job.name}: out of {job.dev.type} memory while {doing} ({first}) — {advice}") from exc


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


def rng_states() -> dict:
    """The generators' states as tensors and plain values, so that checkpoints load with ``weights_only=True``."""
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    # numpy's stubs: the legacy get_state() may be a dict; for the global MT19937 generator it is this 5-tuple
    states = {"python": random.getstate(), "torch": torch.get_rng_state(),
              "numpy": [name, torch.from_numpy(keys.astype(np.int64)),  # type: ignore[attr-defined]
                        int(pos), int(has_gauss), float(cached)]}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    import torch

    random.setstate(states["python"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(job: Job, path: Path, finished: bool = False) -> int:
    """Everything needed to continue after this epoch, written to a temporary sibling and renamed into place; returns
    its size, which is added to the state's ``checkpoint_bytes_written``. ``finished``: training is over — only the
    state (history, best epoch and its weights, MLflow run id) is needed. The best weights are stored once: when the
    best epoch is this one they are the model's (``best_is_model``), restored from those by :func:`load_checkpoint`."""
    import torch

    state = job.state
    best_is_model = not finished and state["best"] is not None and state["best"][1] == state["epoch"]
    if best_is_model:
        state = {**state, "best_state": None}
    ckpt = {"spec_hash": spec_hash(job.spec), "train_hash": train_hash(job.spec),
            "data_hash": data_hash(job.data.manifest), "state": state,
            "finished": finished, "best_is_model": best_is_model}
    if not finished:
        ckpt.update(model=job.module.state_dict(), optimizer=job.optimizer.state_dict(),
                    scheduler=job.scheduler.state_dict(), scaler=job.scaler.state_dict(),
                    generator=job.generator.get_state(), rng=rng_states())
    with replacing(path) as tmp:
        torch.save(ckpt, tmp)
        size = tmp.stat().st_size
    job.state["checkpoint_bytes_written"] = job.state.get("checkpoint_bytes_written", 0) + size
    return size


# training keys that do not change what is trained (the checkpoint interval: when the state is written)
EVALUATION_ONLY = ("eval_batch_size", "checkpoint_minutes")


def train_hash(spec: dict) -> str:
    """The spec as far as training goes: a checkpoint stays valid when only ``EVALUATION_ONLY`` keys change (the
    remedy for running out of memory in evaluation is a smaller ``eval_batch_size``, not a retraining)."""
    return spec_hash({**spec, "training": {k: v for k, v in spec["training"].items() if k not in EVALUATION_ONLY}})


def data_hash(manifest: dict) -> str:
    """The prepared data a checkpoint belongs to: its manifest (options, source, counts, classes), timing aside."""
    return spec_hash({k: v for k, v in manifest.items() if k != "prepare_seconds"})


def mismatch(module, weights: dict) -> str | None:
    """Why ``weights`` cannot be loaded into ``module`` (missing / unexpected keys, other shapes), or None."""
    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    shapes = [k for k in own if k in weights and tuple(own[k].shape) != tuple(weights[k].shape)]
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", shapes)):
        if keys:
            return f"{what}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
    return None


def load_checkpoint(job: Job, path: Path) -> bool:
    """Restore ``job`` from ``path`` if it holds a checkpoint of this very spec, trained on this very prepared data,
    whose weights fit the model; False (and nothing changed) if not."""
    import torch

    if not path.is_file():
        return False
    try:
        # weights_only: results/ may sit on a shared file system, and a pickle can run any code as whoever loads it
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # objects other than tensors and plain values: not ours, or pre-0.x
        print(f"[finebench] {job.name}: ignoring {path}: it holds objects other than tensors and plain values, which "
              f"finebench never writes (written by an older finebench, or planted) — not loaded, training afresh "
              f"({str(exc).splitlines()[-1][:200]})", file=sys.stderr, flush=True)
        return False
    except Exception as exc:  # unreadable: written by another version, or damaged — start afresh
        print(f"[finebench] {job.name}: ignoring unreadable checkpoint {path} ({type(exc).__name__}: {exc})",
              file=sys.stderr, flush=True)
        return False
    same_spec = ckpt.get("spec_hash") == spec_hash(job.spec) or ckpt.get("train_hash") == train_hash(job.spec)
    why = ("written for another spec" if not same_spec else
           "trained on other prepared data (its manifest differs: the task's data changed since)"
           if ckpt.get("data_hash") != data_hash(job.data.manifest) else
           mismatch(job.module, ckpt["state"]["best_state"] if ckpt.get("finished") else ckpt["model"]))
    if why:
        print(f"[finebench] {job.name}: ignoring {path}: {why}", file=sys.stderr, flush=True)
        return False
    job.state = ckpt["state"]
    # the bytes of the saves before this one are in its state; its own are added here (a resumed run counts both)
    job.state["checkpoint_bytes_written"] = job.state.get("checkpoint_bytes_written", 0) + path.stat().st_size
    if ckpt.get("finished"):  # no epochs left: fit evaluates the best epoch's weights (in the state)
        return True
    if ckpt.get("best_is_model"):  # saved at its best epoch: the best weights are the model's, stored once
        job.state["best_state"] = dict(ckpt["model"])  # tensors of their own: load_state_dict copies them
    job.module.load_state_dict(ckpt["model"])
    job.optimizer.load_state_dict(ckpt["optimizer"])
    job.scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler"):  # fp16 runs: the loss scale reached
        job.scaler.load_state_dict(ckpt["scaler"])
    job.generator.set_state(ckpt["generator"])
    set_rng_states(ckpt["rng"])
    return True


# ---------------------------------------------------------------------------------------------------------------
# Result


IDENTITY = ("task", "dataset", "modality", "model", "family", "arch", "seed")


def build_result(job: Job, run: Run, *, what: dict, how: dict | None = None, scores: dict,
                 cost: dict | None = None) -> dict:
    """A ``metrics.json``: a final run's (:func:`assemble`) or a tuning trial's (:func:`trial_result`). Every field
    both carry is built here and only here; each kind's own fields go in between, keeping the order of the file:
    identity, ``what`` was run, where it is filed and what it ran on, ``how`` (precision, threads), the epochs,
    ``scores``, what training took and chose, ``cost``. Non-finite numbers become null (strict JSON)."""
    spec, s = job.spec, job.state
    result = {
        **{k: spec[k] for k in IDENTITY},
        **what,
        # where it is filed and what it ran on: the same fields in every metrics.json
        "status": "FINISHED",
        "mlflow_run_id": run.run_id,
        "mlflow_experiment_id": run.experiment_id,
        "spec_hash": spec_hash(spec),
        "device": job.dev.type,
        "device_name": job.device_name,  # which GPU / CPU model the cost columns were measured on
        "environment": job.environment,  # package versions, CUDA / cuDNN, git commit and dirtiness (provenance)
        **(how or {}),
        "epochs": job.t["epochs"],
        **scores,
        # what training took and chose: the best epoch and its scores, size, time, checkpoint bytes, throughput
        "best_epoch": s["best"][1],
        **job.objective.best_fields(s["best"][0]),
        "n_params": job.n_params,
        "train_seconds": s["train_seconds"],
        "data_seconds": s["data_seconds"],
        "checkpoint_bytes_written": s.get("checkpoint_bytes_written", 0),  # every save of the run (checkpoint.py)
        **compile_figures(job),
        **(cost or {}),
    }
    return {k: finite_or_none(v) for k, v in result.items()}


def assemble(job: Job, test: dict, cost: dict, run: Run) -> dict:
    """The run's result (``metrics.json``): identity, protocol, test metrics, training and cost figures."""
    spec, data = job.spec, job.data
    return build_result(
        job, run,
        what={"protocol": run_protocol(data.manifest, spec),
              "data_note": data.manifest.get("data_note", "")},  # the dataset source's caveat (DatasetSource.data_note)
        how={**({"tuning": spec["tuning"]} if "tuning" in spec else {}),  # tuned: budget, chosen trial and values
             # "fp32+bf16": resumed on another device
             "precision": "+".join(job.state.get("precisions") or [job.precision]),
             "threads": job.threads},
        scores={"num_classes": data.num_classes,
                "n_train": data.manifest["splits"]["train"]["n"],
                "preprocess": {k: (list(v) if isinstance(v, tuple) else v) for k, v in job.preprocess.items()},
                **test},
        cost=cost)


def score_name(best: dict, score: float) -> str:
    """The name of what a trial's ``val_score`` is: the best epoch's first field (``val_accuracy``), or its negation
    (``-val_wer``) where the selection key negates a lower-is-better metric."""
    name, value = next(iter(best.items()))
    name = name.removeprefix("best_")
    return name if value == score else f"-{name}"


def trial_result(job: Job, run: Run) -> dict:
    """A tuning trial's result (``metrics.json``): identity, its values and its best validation score — no test."""
    spec, key = job.spec, job.state["best"][0]
    return build_result(
        job, run,
        what={"trial": spec["trial"], "task_type": job.data.manifest.get("task_type", "classification"),
              "tuned_values": spec["tuned_values"]},
        # the selection key's first part at the best epoch: what the tuning maximises (val accuracy, PSNR …)
        scores={"val_score": float(key[0]), "val_metric": score_name(job.objective.best_fields(key), key[0])})


def compile_figures(job: Job) -> dict:
    """``train_samples_per_s``, and with ``training.compile`` the seconds spent compiling, estimated: the epochs that
    compiled (the first of each process) minus what they would have taken at the other epochs' pace. Throughput
    leaves them out, so a compiled model is not ranked slower for its one-off compile; ``train_seconds`` keeps them
    (what the run cost). With no epoch that did not compile (one epoch per process) nothing can be separated:
    ``compile_seconds`` is None and the throughput includes the compile."""
    s = job.state
    if not s["train_seconds"]:
        return {"train_samples_per_s": None}
    if not job.t.get("compile"):
        return {"train_samples_per_s": s["samples_seen"] / s["train_seconds"]}
    compiled = set(s.get("compile_epochs", []))
    steady = [r["train_seconds"] for r in s["history"] if r["epoch"] not in compiled]
    if not steady or len(steady) == len(s["history"]):
        return {"train_samples_per_s": s["samples_seen"] / s["train_seconds"], "compile_seconds": None}
    pace = sum(steady) / len(steady)  # seconds per epoch without compiling (every epoch trains as many samples)
    extra = sum(max(0.0, r["train_seconds"] - pace) for r in s["history"] if r["epoch"] in compiled)
    return {"train_samples_per_s": s["samples_seen"] / (s["train_seconds"] - extra), "compile_seconds": extra}


# ---------------------------------------------------------------------------------------------------------------
# The run


def with_selection(spec: dict, tuned: str | Path) -> dict:
    """A tuned final run's spec with the values its tuning chose (``selected.json`` of finebench.tuning.select), which
    must be that selection as written for this run's task, model and tuning (space, budget, sampler, seed), its
    values inside the space (finebench.tuning.read_selection): an edited or copied file is an error, never trained."""
    from finebench import tuning
    from finebench.config import TRAINING_KEYS

    path = Path(tuned)
    if "tuning" not in spec:
        raise FinebenchError(f"--tuned {path}: the run {spec['task']}/{spec['model']} is not tuned (its spec has no "
                             f"`tuning`)")
    selected = tuning.read_selection(path, spec["task"], spec["model"], spec["tuning"])
    out = tuning.apply(spec, selected["values"], TRAINING_KEYS)
    out["tuning"] = {**spec["tuning"], "trial": selected["trial"], "values": selected["values"],
                     "val_score": selected["val_score"]}
    return out


def fit(spec: dict, data_dir: str | Path, out_dir: str | Path, experiment_file: str | Path,
        device: str = "auto", threads: int = 1, progress: bool | None = None, tuned: str | Path | None = None) -> dict:
    """Train one (task, model, seed) run (resuming from its checkpoint if there is one); returns the metrics dict
    also written to ``metrics.json``. ``tuned``: the selection file of a tuned run (its chosen values). A spec with
    ``trial`` (a tuning trial, finebench.tuning) is scored on the validation split only: no test, no cost.

    Its steps, in order: :func:`start_job`, the MLflow run (:func:`run_tags`, :func:`join_run`),
    :func:`train_epochs`, then one of the two endings — :func:`trial_ending`, or :func:`final_ending` and, once the
    MLflow run has ended, :func:`publish`."""
    from finebench.tracking import Run

    if tuned:
        spec = with_selection(spec, tuned)
    out_dir = Path(out_dir)
    job, resumed = start_job(spec, data_dir, out_dir, device, threads)
    show = sys.stderr.isatty() if progress is None else progress
    with (Run(experiment_file, spec, tags=run_tags(job), run_id=job.state["mlflow_run_id"] if resumed else None) as run,
          full_disk_named(out_dir)):  # a full disk is named (path, free space) in the log and the run's error tag
        join_run(job, run, resumed)
        train_epochs(job, run, out_dir, show)
        if spec.get("trial") is not None:  # selection on validation only: the test split is never scored
            return trial_ending(job, run, out_dir)
        result = final_ending(job, run, out_dir)
    publish(job, out_dir, result)
    return result


def start_job(spec: dict, data_dir: str | Path, out_dir: Path, device: str, threads: int) -> tuple[Job, Path | None]:
    """Clear the run's folder of an earlier result and of files left half-written, set the job up and restore it
    from its checkpoint if one fits (``finished.pt`` first: training is over), write ``spec.json`` and log the run's
    first line. Returns the job, with its provenance taken, and the checkpoint it resumed from (None: from epoch 1)."""
    from finebench.tracking import provenance

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").unlink(missing_ok=True)
    for f in remove_stale_temporaries(out_dir):
        log(f"removed {f}: left half-written by a process that is gone")
    job = set_up(spec, data_dir, device, threads)
    t = job.t
    resumed = next((path for path in (out_dir / FINISHED, out_dir / CHECKPOINT) if load_checkpoint(job, path)), None)
    write_json_atomic(out_dir / "spec.json", spec)
    log(f"{job.name}: {spec['arch']} ({job.n_params:,} params) on {job.dev}, {threads} thread(s), "
        f"{t['epochs']} epochs x {job.steps_per_epoch} steps" +
        ("" if not resumed else f" — resuming after epoch {job.state['epoch']} (checkpoint {resumed})"
         if job.state["epoch"] < t["epochs"] else f" — trained earlier ({resumed}): evaluating its best epoch"))
    job.environment = provenance()
    return job, resumed


def run_tags(job: Job) -> dict:
    """The MLflow run's tags beside its identity (finebench.tracking.Run): spec hash, device, precision, provenance
    (``env.*``), the data's caveat; a trial's number and values, grouped under the tuning's parent run when the
    selection files it (finebench.tuning); a tuned final run's chosen values."""
    spec, note = job.spec, job.data.manifest.get("data_note", "")
    tags = {"config_hash": spec_hash(spec), "device": job.dev.type, "device_name": job.device_name,
            "precision": job.precision,
            **{f"env.{k}": v for k, v in (job.environment or {}).items() if v is not None},
            **({"data_note": note} if note else {})}
    if spec.get("trial") is not None:
        tags.update({"finebench.trial": spec["trial"],
                     "finebench.tuning_parent": f"{spec['task']}/{spec['model']}/tuning",
                     **{f"tuned.{k}": v for k, v in spec["tuned_values"].items()}})
    elif "tuning" in spec:
        tags.update({"finebench.tuned": "true", **{f"tuned.{k}": v for k, v in spec["tuning"]["values"].items()}})
    return tags


def join_run(job: Job, run: Run, resumed: Path | None) -> None:
    """Tie the job to its MLflow run. Continuing its own run (resumed, and that run still in the store), the run is
    tagged with the epoch it resumed after; a new run (also when the checkpoint's run was deleted) gets everything so
    far: the parameter count and the epochs already trained. The state keeps the run's id for the checkpoints."""
    if resumed and run.run_id == job.state["mlflow_run_id"]:
        run.set_tags({"finebench.resumed_after_epoch": job.state["epoch"]})
    else:
        run.log_metrics({"n_params": job.n_params})
        for row in job.state["history"]:
            log_epoch(run, row)
    job.state["mlflow_run_id"] = run.run_id


def log_epoch(run: Run, row: dict) -> None:
    """An epoch's row of ``history.csv`` as MLflow metrics at its step."""
    run.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])


def train_epochs(job: Job, run: Run, out_dir: Path, show: bool) -> None:
    """The epochs not trained yet (none after ``finished.pt``): train, score the validation split, keep the best
    epoch by the objective's selection key (its weights copied once, on the CPU), log the epoch (MLflow, the log) and
    checkpoint when due (finebench.checkpoint). A non-finite loss raises :class:`Diverged` naming this MLflow run.
    Then the per-epoch checkpoint gives way to the small ``finished.pt`` unless ``training.keep_checkpoint``."""
    t, s, ckpt = job.t, job.state, out_dir / CHECKPOINT
    # checkpoints of older versions lack it: their first epoch compiled too
    s.setdefault("compile_epochs", [1] if t.get("compile") and s["history"] else [])
    if job.precision not in s.setdefault("precisions", []):  # a resume on another device may change it
        s["precisions"].append(job.precision)
    first = s["epoch"] + 1
    saves = SaveSchedule(t.get("checkpoint_minutes", TRAINING_DEFAULTS["checkpoint_minutes"]),
                         keep=bool(t.get("keep_checkpoint")))
    for epoch in range(first, t["epochs"] + 1):
        if t.get("compile") and epoch == first:
            s["compile_epochs"].append(epoch)  # the first epoch of each process compiles the model
        try:
            with memory_hint(job, "training"):
                tr = train_one_epoch(job, epoch, show)
        except Diverged as exc:
            exc.mlflow_run_id = run.run_id
            raise
        t_val = time.perf_counter()
        with memory_hint(job, "evaluating"):
            val = evaluate(job, "val")
        row = {"epoch": epoch, "train_loss": tr["train_loss"], **job.objective.epoch_fields(val),
               "lr": job.optimizer.param_groups[0]["lr"],
               "train_seconds": tr["train_seconds"],  # the training loop alone
               "data_seconds": tr["data_seconds"],  # of which waiting for input
               "epoch_seconds": tr["train_seconds"] + time.perf_counter() - t_val}  # + validation
        s["history"].append(row)
        WORK_SECONDS[0] += row["epoch_seconds"]
        s["train_seconds"] += tr["train_seconds"]
        s["data_seconds"] += tr["data_seconds"]
        s["samples_seen"] += tr["samples"]
        key = job.objective.selection_key(val)
        if s["best"] is None or key > s["best"][0]:
            s["best"] = (key, epoch)
            # the best weights: one copy, on the CPU, without optimizer state (checkpoints: save_checkpoint)
            s["best_state"] = {k: v.detach().to("cpu", copy=True) for k, v in job.module.state_dict().items()}
        s["epoch"] = epoch
        log_epoch(run, row)
        if saves.due(epoch, t["epochs"]):  # on an interval, Slurm's warning, the end (finebench.checkpoint)
            saves.saved(job.name, epoch, save_checkpoint(job, ckpt))
        log(f"{job.name} epoch {epoch}: train_loss {row['train_loss']:.4f} "
            + " ".join(f"{k} {v:.4f}" for k, v in job.objective.epoch_fields(val).items())
            + f" ({row['epoch_seconds']:.1f}s, data wait {row['data_seconds']:.2f}s)")

    if not t.get("keep_checkpoint"):  # the per-epoch checkpoint gives way to the small finished one
        save_checkpoint(job, out_dir / FINISHED, finished=True)
        ckpt.unlink(missing_ok=True)


def trial_ending(job: Job, run: Run, out_dir: Path) -> dict:
    """A tuning trial's ending, scored on validation only (the test split is never scored): ``history.csv``, the
    result (:func:`trial_result`), its score and files in its MLflow run, ``metrics.json`` and one log line."""
    spec, s = job.spec, job.state
    write_history(job, out_dir)
    result = trial_result(job, run)
    run.log_metrics({"val_score": result["val_score"], **job.objective.best_fields(s["best"][0])})
    run.log_artifacts(out_dir, exclude=(CHECKPOINT, FINISHED))
    write_json_atomic(out_dir / "metrics.json", result)
    log(f"{job.name}: trial {spec['trial']} {result['val_metric']} {result['val_score']:.4f} (best epoch "
        f"{s['best'][1]}, {s['train_seconds']:.1f}s train) with {spec['tuned_values']}")
    return result


def final_ending(job: Job, run: Run, out_dir: Path) -> dict:
    """A final run's ending, inside its MLflow run: the best epoch's weights scored on the test split (and any further
    test sets) once, the task type's final artifacts, the cost measured; ``history.csv``, the result
    (:func:`assemble`), its metrics and files in the MLflow run. ``metrics.json`` follows: :func:`publish`."""
    from finebench.cost import measure

    t = job.t
    job.module.load_state_dict(job.state["best_state"])
    t_test = time.perf_counter()
    with memory_hint(job, "evaluating"):
        test = evaluate(job, "test")
        # a source may prepare more test sets (manifest "more_tests": {name: split}), each scored like test
        more = {name: evaluate(job, split) for name, split in job.data.manifest.get("more_tests", {}).items()}
    metrics = job.objective.final(test, job.data, out_dir, job.name, more)
    x_cost = job.objective.cost_input(job)[: min(t["eval_batch_size"], 256)]
    with memory_hint(job, "measuring cost", batch=len(x_cost)):
        cost = measure(job.module, x_cost, job.autocast, job.dev,
                       pad_id=job.data.input.get("pad_id", 0) if job.data.input["kind"] == "tokens" else None)
    WORK_SECONDS[0] += time.perf_counter() - t_test
    write_history(job, out_dir)
    result = assemble(job, metrics, cost, run)
    run.log_metrics({k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                     and k not in ("seed", "n_params", "threads", "epochs", "num_classes")})
    run.log_metrics({f"{name}.{k}": v for name, m in (result.get("more_tests") or {}).items()  # set14.test_psnr
                     for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    run.log_artifacts(out_dir, exclude=(CHECKPOINT, FINISHED))
    return result


def write_history(job: Job, out_dir: Path) -> None:
    """``history.csv``: one row per epoch (the state's history, resumed runs' earlier epochs included)."""
    import pandas as pd

    pd.DataFrame(job.state["history"]).to_csv(out_dir / "history.csv", index=False)


def publish(job: Job, out_dir: Path, result: dict) -> None:
    """A final run's last step, after its MLflow run has ended FINISHED: ``metrics.json``, written atomically — its
    presence means the run completed — and the run's headline in the log."""
    s = job.state
    write_json_atomic(out_dir / "metrics.json", result)
    compiling = f", of which ~{result['compile_seconds']:.1f}s compiling" if result.get("compile_seconds") else ""
    log(f"{job.name}: {job.objective.headline(result)} (best epoch {s['best'][1]}, {s['train_seconds']:.1f}s train"
        f"{compiling}, {s['data_seconds']:.2f}s waiting for data)")


def log(message: str) -> None:
    print(f"[finebench] {message}", file=sys.stderr, flush=True)


def log_process_cost(runs: int) -> None:
    """One line: this process's wall time, of which training and evaluating, and the fixed rest."""
    try:
        import psutil

        wall = time.time() - psutil.Process().create_time()
    except (ImportError, OSError):
        return
    fixed = max(0.0, wall - WORK_SECONDS[0])
    log(f"process: {runs} run(s), {wall:.1f} s wall, {WORK_SECONDS[0]:.1f} s training and evaluating, {fixed:.1f} s "
        f"({100 * fixed / max(wall, 1e-9):.0f} %) fixed: start-up, data, model, MLflow")
