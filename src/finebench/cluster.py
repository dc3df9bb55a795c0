"""How many GPUs a training job asks for — the one decision shared by local runs and cluster profiles — and, on a
local run with several GPUs, which one each training job takes (the second half of this file).

The training rules (train_<task type>) declare the Snakemake resource ``gpu`` with :func:`train_gpus`. Locally,
``--resources gpu=N`` (``make benchmark GPUS=N``) then runs at most N training jobs at once; on Slurm the executor
plugin turns it into ``sbatch --gpus=N``, which a partition without GPUs rejects. So:

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

import fcntl
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import IO


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
    only a dry run of one (``-n`` swaps in the local dry-run executor; Snakemake still plans threads for the real
    one)."""
    if workflow.non_local_exec:
        return True
    settings = workflow.execution_settings
    return bool(workflow.dryrun and settings is not None and settings.use_threads)


# ---------------------------------------------------------------------------------------------------------------
# Local runs on a machine with several GPUs: each concurrent training job on the least busy GPU
#
# Snakemake's `--resources gpu=N` only limits how many training jobs run at once; every job would still train on
# cuda:0. So when a local run starts executing (the Snakefile's onstart: a cluster executor is known by then), it
# sets CLAIM_GPU_ENV for the jobs it spawns; each training job, before torch initialises CUDA, takes a lock on the
# least busy visible GPU — level 0 of every GPU first, then level 1 … (a lock file per GPU and level, held for the
# job's lifetime and released by the kernel however the process ends, kill -9 included) — and keeps only that GPU
# visible. The locks live in one folder per user on this machine, so two workflows in different folders share the
# GPUs out too. Slurm jobs get their GPUs from the scheduler and claim nothing; nor does a job started by hand.

CLAIM_GPU_ENV = "FINEBENCH_CLAIM_GPU"
GPU_LOCKS_ENV = "FINEBENCH_GPU_LOCKS"  # where the locks live (default: a folder per user in the temp dir)
_held: list[IO[str]] = []  # the claimed GPU's open lock file: kept open until the process exits


def export_gpu_claims(workflow) -> None:
    """In the Snakefile's onstart: tell the local jobs of this run to claim a GPU each (they inherit the
    environment). Not for a cluster executor: sbatch --export=ALL would hand it to every Slurm job."""
    if workflow.is_main_process and not cluster_executor(workflow):
        os.environ[CLAIM_GPU_ENV] = "1"


def visible_gpus(log=None) -> list[str]:
    """The GPUs a process may use, without initialising CUDA: ``CUDA_VISIBLE_DEVICES`` when set (indices or
    ``GPU-``/``MIG-`` UUIDs; like CUDA, nothing from the first invalid entry on), else one index per ``GPU n:`` line
    of ``nvidia-smi -L`` (and CUDA_DEVICE_ORDER=PCI_BUS_ID, so that CUDA numbers them as nvidia-smi does); [] where
    there is none or no NVIDIA driver answers."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        gpus = []
        for entry in (e.strip() for e in listed.split(",")):
            if not re.fullmatch(r"\d+|(GPU|MIG)-[\w/-]+", entry):
                break
            gpus.append(entry)
        return gpus
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except subprocess.TimeoutExpired:
        if log:
            log("[finebench] nvidia-smi -L did not answer in 10 s: no GPU claimed, torch chooses")
        return []
    except OSError:  # no nvidia-smi: no NVIDIA GPU
        return []
    gpus = [str(i) for i, _ in enumerate(line for line in out.splitlines() if line.startswith("GPU "))]
    if gpus:
        os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    return gpus


def claim_gpu(device: str, log=print) -> str | None:
    """In a training job of a local run, before torch initialises CUDA: lock the least busy visible GPU and make it
    the only visible one. Returns the GPU id kept visible, or None when there is nothing to choose."""
    if device == "cpu" or os.environ.get(CLAIM_GPU_ENV) != "1":
        return None
    gpus = visible_gpus(log)
    if len(gpus) < 2:
        return None
    lock_dir = Path(os.environ.get(GPU_LOCKS_ENV) or Path(tempfile.gettempdir(), f"finebench-gpu-locks-{os.getuid()}"))
    lock_dir.mkdir(parents=True, exist_ok=True)
    names = {gpu: re.sub(r"[^\w.-]", "_", gpu) for gpu in gpus}  # UUIDs of MIG devices may hold "/"
    for level in range(256):  # level k of a GPU: the (k+1)-th finebench job on it
        for gpu in gpus:
            f = open(lock_dir / f"{names[gpu]}.{level}.lock", "a")  # noqa: SIM115 — held open for the job's lifetime
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            _held.append(f)
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
            others = f"shared with {level} other finebench job(s)" if level else "no other finebench job on it"
            log(f"[finebench] GPU {gpu} of {','.join(gpus)} ({others}): CUDA_VISIBLE_DEVICES={gpu}")
            return gpu
    return None
