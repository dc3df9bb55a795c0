"""How many GPUs a training job asks for — the one decision shared by local runs and cluster profiles.

The train rule declares the Snakemake resource ``gpu`` with :func:`train_gpus`. Locally, ``--resources gpu=N``
(``make benchmark GPUS=N``) then runs at most N training jobs at once; on Slurm the executor plugin turns it into
``sbatch --gpus=N``, which a partition without GPUs rejects. So:

=================  ==========================  =====================================================
config ``device``  local run (``--cores``)     cluster executor (``--workflow-profile .../slurm``)
=================  ==========================  =====================================================
``cuda``           1                           1 (``--gpus=1``)
``cpu``            0                           0
``auto``           1 (one job per GPU slot)    0 — a CPU partition; training falls back to the CPU
=================  ==========================  =====================================================

``gpus_per_job: N`` in the config overrides the table: ``device: auto`` on a GPU partition is
``--config gpus_per_job=1`` (or ``device: cuda``, which also fails loudly where no GPU is visible).
"""

from __future__ import annotations


def train_gpus(config: dict, cluster: bool) -> int:
    """GPUs per training job for ``config`` (with defaults applied); ``cluster``: a non-local Snakemake executor."""
    explicit = config.get("gpus_per_job")
    if explicit is not None:
        return int(explicit)
    device = config.get("device", "auto")
    if device == "cuda":
        return 1
    if device == "cpu":
        return 0
    return 0 if cluster else 1


def cluster_executor(workflow) -> bool:
    """Whether this Snakemake run submits jobs to a cluster (a non-local executor such as slurm), also when it is
    only a dry run of one (``-n`` swaps in the local dry-run executor; Snakemake still plans threads for the real one)."""
    if workflow.non_local_exec:
        return True
    settings = workflow.execution_settings
    return bool(workflow.dryrun and settings is not None and settings.use_threads)
