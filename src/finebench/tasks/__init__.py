"""Task types: what a kind of task is, declared in one place each (``tasks/<type>/__init__.py``).

A task type says how its runs are trained and scored and how they are compared: its objective (loss, evaluation,
model-selection key, final artifacts — the trainer's seam), its metrics (name, label, unit, direction, number format,
which one is primary), the files each run writes besides ``metrics.json`` (the training rule's outputs), its plots,
and its tables (``tables``: a finebench.tasks.tables.Tables subclass — its fields, columns, baseline rows and prose;
the one renderer there writes its part of each table file). The
trainer (finebench.train), the workflow's training rules (workflow/rules/train.smk), the one report builder
(finebench.report) and the MLflow summaries (finebench.tracking) ask the registry; none of them names a task type.

    from finebench.tasks import TASK_TYPES, get
    get("superres").primary.name          # 'test_psnr'

Its datasets and models stay in the dataset and model registries (``data/``, ``models/``), which declare the task
type each one serves (``DatasetSource.task_type``, ``Arch.task_type``): one registry per concern, shared download,
official-count and input machinery. A task type outside this package (tests/toy_regression.py registers one) is
imported by naming its module in ``FINEBENCH_TASK_TYPES`` (comma-separated), so Snakemake jobs see it too.
"""

from __future__ import annotations

import importlib
import os

from finebench.tasks.registry import TASK_TYPES, Metric, TaskType, get, register

# isort: off
from finebench.tasks import classification, superres  # noqa: E402,F401  (the built-in task types register)
from finebench.tasks import asr  # noqa: E402,F401  (after them: classification's sections title the shared files)
# isort: on

for _module in filter(None, (m.strip() for m in os.environ.get("FINEBENCH_TASK_TYPES", "").split(","))):
    importlib.import_module(_module)

__all__ = ["TASK_TYPES", "Metric", "TaskType", "get", "register"]
