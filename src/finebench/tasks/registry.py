"""The task-type registry: :class:`TaskType` and :class:`Metric` (see finebench.tasks)."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Metric:
    """A test metric as ``metrics.json`` holds it (``name``) and as the tables show it: ``scale`` × value in
    ``fmt``, with ``unit``; ``higher_is_better`` orders ranks, bests and Pareto fronts."""

    name: str
    label: str
    unit: str = ""
    higher_is_better: bool = True
    fmt: str = ".2f"
    scale: float = 1.0
    primary: bool = False
    interval: bool = False  # a secondary metric: the leaderboard keeps its 95 % CI over seeds ({name}_ci95) too

    def show(self, value: float) -> str:
        return format(self.scale * value, self.fmt)


@dataclass
class TaskType:
    """A task type's declaration. ``objective`` and ``tables`` name where its code lives ("module:Class", "module"),
    imported only by whoever needs them: a training job never imports the table code (pandas, plotting)."""

    name: str
    title: str  # in words, for headings and messages: "classification", "super-resolution"
    metrics: tuple[Metric, ...]
    objective: str  # "module:Class" of the trainer's objective (see finebench.train: loss, evaluate, final …)
    tables: str  # "module:Class" of its tables: a finebench.tasks.tables.Tables subclass
    run_files: tuple[str, ...] = ()  # what each run writes besides metrics.json and history.csv: the rule's outputs
    table_files: tuple[str, ...] = ()  # its own CSV tables (the Markdown/HTML files are shared); the first: its board
    plot_kinds: tuple[str, ...] = ()  # results/plots/{task}_{kind}.png for each of its tasks
    # The training keys only its tasks read: {key: its JSON-schema property (type, bounds, description)}, merged
    # into the config schema's training section (finebench.config.SCHEMA), and their defaults (TRAINING_DEFAULTS)
    training: dict[str, dict] = field(default_factory=dict)
    training_defaults: dict[str, object] = field(default_factory=dict)
    # Architectures it runs: those declared for it, those declared for the types in `heads` (a backbone to which it
    # gives its own head), and with `hf_head` the hf: models (models/hf.py heads them for it)
    heads: tuple[str, ...] = ()
    hf_head: bool = False
    # What an hf: model's training job reads: "view" — the tokenised text or the waveforms of the prepared task
    # (workflow/rules/hf.smk); "prepared" — the prepared task itself (it already holds what hf: models take)
    hf_input: str = "prepared"

    def runs(self, arch: str, arch_type: str) -> bool:
        """Whether an architecture (``arch``, declared for task type ``arch_type``) runs on its tasks."""
        if arch.startswith("hf:"):
            return self.hf_head
        return arch_type == self.name or arch_type in self.heads

    @property
    def primary(self) -> Metric:
        return next(m for m in self.metrics if m.primary)

    @property
    def rule(self) -> str:
        """The name of its training rule (workflow/rules/train.smk)."""
        return f"train_{self.name}"

    def new_objective(self):
        """An instance of its objective class, which must subclass finebench.tasks.objective.Objective and define
        every abstract method (else a FinebenchError naming the missing ones)."""
        from finebench.errors import FinebenchError
        from finebench.tasks.objective import Objective

        module, _, name = self.objective.partition(":")
        cls = getattr(importlib.import_module(module), name)
        if not (isinstance(cls, type) and issubclass(cls, Objective)):
            raise FinebenchError(f"task type {self.name!r}: objective {self.objective} is not a subclass of "
                                 f"finebench.tasks.objective.Objective")
        if cls.__abstractmethods__:
            raise FinebenchError(f"task type {self.name!r}: objective {self.objective} lacks "
                                 f"{', '.join(sorted(cls.__abstractmethods__))} (finebench.tasks.objective.Objective)")
        return cls()

    @functools.cached_property
    def table_code(self):
        """Its tables (an instance of the class ``tables`` names, a finebench.tasks.tables.Tables subclass, else a
        FinebenchError)."""
        from finebench.errors import FinebenchError

        module, _, name = self.tables.partition(":")
        cls = getattr(importlib.import_module(module), name, None) if name else None
        # a subclass has finebench.tasks.tables.Tables among its bases (read without importing the module here: the
        # renderer's module depends on the registry, not the reverse)
        if not (isinstance(cls, type) and any(f"{c.__module__}.{c.__qualname__}" == "finebench.tasks.tables.Tables"
                                              for c in cls.__mro__)):
            raise FinebenchError(f"task type {self.name!r}: tables {self.tables} is not \"module:Class\" of a "
                                 f"subclass of finebench.tasks.tables.Tables")
        return cls(self)


TASK_TYPES: dict[str, TaskType] = {}
# The task type of a run, dataset or architecture that names none: finebench's first, before task types existed
# (a metrics.json, manifest or references.yaml entry of an older version; a timm: model)
LEGACY = "classification"


def register(task_type: TaskType) -> TaskType:
    if task_type.name in TASK_TYPES:
        raise ValueError(f"task type {task_type.name!r} registered twice")
    if sum(m.primary for m in task_type.metrics) != 1:
        raise ValueError(f"task type {task_type.name!r}: exactly one metric must be primary")
    TASK_TYPES[task_type.name] = task_type
    return task_type


def get(name: str) -> TaskType:
    from finebench.errors import FinebenchError

    if name not in TASK_TYPES:
        raise FinebenchError(f"task type {name!r} is not registered (known: {', '.join(TASK_TYPES)}; a task type of "
                             f"your own: name its module in FINEBENCH_TASK_TYPES)")
    return TASK_TYPES[name]
