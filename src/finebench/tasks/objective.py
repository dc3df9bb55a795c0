"""The trainer's seam: :class:`Objective`, what finebench.train asks of a task type. A task type's objective subclasses
it (``TaskType.objective`` names the class): the abstract methods are what every type must say, the others have the
trainer's defaults, which a type overrides where its runs differ. This is the one description of the interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path


class Objective(ABC):
    """A task type's loss, evaluation, model selection and final artifacts, for the one trainer (finebench.train)."""

    name = ""  # the task type's name
    # What to do when evaluating / measuring the cost runs out of accelerator memory; None: the trainer's advice
    # (lower training.eval_batch_size where this run gets it).
    eval_memory_advice: str | None = None
    cost_memory_advice: str | None = None

    # -- what every task type says --

    @abstractmethod
    def loss(self, out, y, t: dict):
        """The training loss of a batch (``t``: the run's training options)."""

    @abstractmethod
    def evaluate(self, model, loader, autocast, num_classes: int) -> dict:
        """``loss`` and the type's scores on one split."""

    @abstractmethod
    def selection_key(self, ev: dict) -> tuple:
        """The trainer keeps the epoch with the largest key; its first part at the best epoch is a tuning trial's
        ``val_score``, which the tuning maximises (negate a lower-is-better metric)."""

    @abstractmethod
    def epoch_fields(self, ev: dict) -> dict:
        """The per-epoch validation values for ``history.csv`` and MLflow (``val_accuracy`` …)."""

    @abstractmethod
    def best_fields(self, key: tuple) -> dict:
        """The best epoch's scores in ``metrics.json`` (``best_val_accuracy`` …), from its selection key."""

    @abstractmethod
    def headline(self, result: dict) -> str:
        """One line for the job's log."""

    @abstractmethod
    def final(self, ev: dict, data, out_dir: Path, title: str, more: dict) -> dict:
        """Write the type's run files (``TaskType.run_files``) into ``out_dir`` and return the test metrics,
        ``task_type`` included; ``more``: the evaluations of further test sets (manifest ``more_tests``)."""

    # -- hooks with the trainer's defaults --

    def loader(self, job, split: str, train: bool = False):
        """The input pipeline of a split: finebench.loader over the prepared arrays (shuffled, augmented and capped at
        ``job.steps_per_epoch`` batches for training; a background thread on CUDA)."""
        from finebench.loader import Loader

        t = job.t
        return Loader(job.data, split, t["batch_size"] if train else t["eval_batch_size"], job.dev,
                      shuffle=train, generator=job.generator if train else None, augment=train,
                      preprocess=job.preprocess, spec_aug=t.get("spec_augment") if train else None,
                      max_batches=job.steps_per_epoch if train else None, channels_last=job.channels_last,
                      # a loader thread overlaps input with GPU compute; on the CPU it would only compete for cores
                      prefetch=2 if job.dev.type == "cuda" else 0)

    def train_size(self, data) -> int:
        """Training samples per epoch (the schedule's steps are this / batch_size): the train split's size."""
        return int(data.manifest["splits"]["train"]["n"])

    def train_steps(self, data, t: dict, generator, module) -> int | None:
        """Training batches per epoch when batches vary in size; None: ceil(train_size / batch_size)."""
        return None

    def cost_input(self, job):
        """The input the cost measurements (FLOPs, latency, memory) run on: the first test batch; the trainer keeps
        at most min(eval_batch_size, 256) of it."""
        x, _ = next(iter(job.loader("test")))
        return x
