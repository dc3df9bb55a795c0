"""Dataset registry. Importing this package registers every built-in source."""

from finebench.data.registry import DATASETS, SPLITS, DatasetSource, Prepared, prepare_task, register

# isort: split
from finebench.data import (  # noqa: F401  (registers, after the registry)
    asr_sources,
    speech,
    speech_sentences,
    speech_synth,
    superres,
    textsets,
    typefaces,
    vision,
    wordnet,
)

__all__ = ["DATASETS", "SPLITS", "DatasetSource", "Prepared", "prepare_task", "register"]

# Task types of one's own (FINEBENCH_TASK_TYPES, see finebench.tasks) register their dataset sources when imported:
# every process that reads this registry sees them.
import finebench.tasks  # noqa: E402,F401
