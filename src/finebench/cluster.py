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


# ---------------------------------------------------------------------------------------------------------------
# Local runs on a machine with several GPUs: one GPU per concurrent training job
#
# Snakemake's `--resources gpu=N` only limits how many training jobs run at once; every job would still train on
# cuda:0. So the main Snakemake process of a local run (not a cluster executor, not a job inside one) tells its jobs
# how many slots there are (GPU_SLOTS_ENV: N, or 0 when no gpu limit was given) and where their locks live; each
# training job claims the first free slot with a lock held for its lifetime (released by the kernel however the
# process ends, kill -9 included) and keeps only that slot's GPU visible: slot s -> the s-th visible GPU, modulo
# their number (N above the GPU count puts N / GPUs jobs on each). Slurm jobs get their GPUs from the scheduler.

GPU_SLOTS_ENV = "FINEBENCH_GPU_SLOTS"
GPU_LOCKS_ENV = "FINEBENCH_GPU_LOCKS"
_held = []  # the claimed slot's open lock file: kept open until the process exits


def export_gpu_slots(workflow, lock_dir: str) -> None:
    """In the Snakefile: hand the local run's GPU slots to its jobs through the environment (they inherit it)."""
    import os

    if not workflow.is_main_process or cluster_executor(workflow):
        return
    resources = workflow.global_resources
    os.environ[GPU_SLOTS_ENV] = str(resources["gpu"].value if "gpu" in resources else 0)
    os.environ[GPU_LOCKS_ENV] = os.path.abspath(lock_dir)


def visible_gpus() -> list[str]:
    """The GPUs a process may use, without initialising CUDA: ``CUDA_VISIBLE_DEVICES`` when set (indices or
    UUIDs), else one per ``GPU n:`` line of ``nvidia-smi -L``; [] where there is none (or no NVIDIA driver)."""
    import os
    import subprocess

    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, _ in enumerate(line for line in out.splitlines() if line.startswith("GPU "))]


def claim_gpu(device: str, log=print) -> str | None:
    """In a training job, before torch initialises CUDA: claim a GPU slot of the local run (see above) and make its
    GPU the only visible one. Returns the GPU id kept visible, or None when there is nothing to choose."""
    import fcntl
    import os
    from pathlib import Path

    slots = os.environ.get(GPU_SLOTS_ENV)
    if device == "cpu" or slots is None:
        return None
    gpus = visible_gpus()
    if len(gpus) < 2:
        return None
    n = int(slots) or len(gpus)
    lock_dir = Path(os.environ.get(GPU_LOCKS_ENV) or ".snakemake/finebench/gpu-slots")
    lock_dir.mkdir(parents=True, exist_ok=True)
    claimed = None
    for slot in range(n):
        f = open(lock_dir / f"slot{slot}.lock", "w")  # noqa: SIM115 — held open for the job's lifetime
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        _held.append(f)
        claimed = slot
        break
    if claimed is None:  # more jobs than slots: only without a gpu limit (one slot per GPU); share one
        claimed = os.getpid() % n
        note = f"all {n} GPU slots busy: sharing slot {claimed}"
    else:
        note = f"GPU slot {claimed} of {n}"
    gpu = gpus[claimed % len(gpus)]
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    log(f"[finebench] {note}: CUDA_VISIBLE_DEVICES={gpu} (of {','.join(gpus)})")
    return gpu
