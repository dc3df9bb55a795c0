"""Dataset registry. Importing this package registers every built-in source."""

from finebench.data.registry import DATASETS, SPLITS, DatasetSource, Prepared, prepare_task, register
from finebench.data import speech, speech_synth, superres, textsets, typefaces, vision, wordnet  # noqa: F401  (registers)

__all__ = ["DATASETS", "SPLITS", "DatasetSource", "Prepared", "prepare_task", "register"]
