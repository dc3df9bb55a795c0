"""A local run on a machine with several GPUs: each concurrent training job trains on a GPU of its own.

There is no GPU here: the tests give the jobs GPU ids through ``CUDA_VISIBLE_DEVICES`` or a stand-in ``nvidia-smi``
that lists two GPUs (as the real one does: ``GPU 0: NVIDIA H200 (UUID: …)``); what they check is which GPU each job
keeps visible. The CPU build of torch then trains on the CPU, as ``device: auto`` does without a GPU.
"""

import os
import signal
import subprocess
import sys

import pytest
import yaml

from finebench import cluster

CLAIM = ("import sys, time; from finebench.cluster import claim_gpu; "
         "print(claim_gpu(sys.argv[1], log=lambda m: None), flush=True); time.sleep(60)")


def fake_nvidia_smi(folder, gpus=2):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"GPU {i}: NVIDIA H200 (UUID: GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd)" for i in range(gpus)]
    lines.insert(1, "  MIG 1g.18gb     Device  0: (UUID: MIG-11111111-2222-3333-4444-555555555555)")
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\ncat <<'EOF'\n" + "\n".join(lines) + "\nEOF\n")
    script.chmod(0o755)
    return folder


@pytest.fixture
def slots_env(tmp_path, monkeypatch):
    monkeypatch.setenv(cluster.GPU_SLOTS_ENV, "2")
    monkeypatch.setenv(cluster.GPU_LOCKS_ENV, str(tmp_path / "locks"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    return tmp_path


def start_job(device="auto"):
    proc = subprocess.Popen([sys.executable, "-c", CLAIM, device], stdout=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    return proc, proc.stdout.readline().strip()


def test_concurrent_jobs_take_different_gpus_and_a_killed_job_frees_its_own(slots_env):
    jobs = []
    try:
        first, gpu_a = start_job()
        jobs.append(first)
        second, gpu_b = start_job()
        jobs.append(second)
        assert {gpu_a, gpu_b} == {"3", "5"}  # slot 0 -> the first visible GPU, slot 1 -> the second
        third, gpu_c = start_job()  # more jobs than slots (only without a gpu limit): it shares one
        jobs.append(third)
        assert gpu_c in ("3", "5")
        first.send_signal(signal.SIGKILL)
        first.wait()
        fourth, gpu_d = start_job()  # kill -9 released the first job's lock: its GPU is free again
        jobs.append(fourth)
        assert gpu_d == gpu_a
    finally:
        for job in jobs:
            job.kill()
            job.wait()


def test_nothing_is_chosen_for_the_cpu_outside_a_local_run_or_with_one_gpu(slots_env, monkeypatch):
    assert start_job("cpu")[1] == "None"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    assert start_job()[1] == "None"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,4")
    monkeypatch.delenv(cluster.GPU_SLOTS_ENV)  # not started by the Snakefile of a local run (e.g. a Slurm job)
    assert start_job()[1] == "None"


def test_gpus_are_counted_with_nvidia_smi_without_touching_cuda(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", f"{fake_nvidia_smi(tmp_path / 'bin', gpus=3)}:{os.environ['PATH']}")
    assert cluster.visible_gpus() == ["0", "1", "2"]  # the MIG line is not a GPU of its own
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert cluster.visible_gpus() == []  # no driver, no GPU


@pytest.mark.slow
def test_a_local_run_with_two_gpu_slots_spreads_its_training_jobs(repo, tmp_path):
    """``snakemake --resources gpu=2`` (``make benchmark GPUS=2``) on a machine with two GPUs: the two training jobs
    that run at once keep GPU 0 and GPU 1 visible, one each; every job claims a free slot."""
    cfg = {
        "experiment": "slots", "seeds": [0, 1, 2, 3], "device": "auto", "threads": 1,
        "tasks": {"tf": {"dataset": "typefaces", "families": ["NimbusSans", "URWGothic"], "styles_per_family": 1,
                         "vocabulary": 100, "train_per_class": 8, "val_per_class": 4, "test_per_class": 4}},
        "training": {"epochs": 1, "batch_size": 8},
        "models": {"cnn": {"family": "cnn", "modality": "vision", "arch": "small_cnn", "channels": [4, 8]}},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PATH": f"{fake_nvidia_smi(tmp_path / 'bin')}:{os.environ['PATH']}"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory",
                           str(tmp_path), "--cores", "2", "results/tables/leaderboard.csv", "--resources", "gpu=2",
                           "--configfile", str(tmp_path / "c.yaml")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    logs = {seed: (tmp_path / f"results/logs/train/tf/cnn/seed{seed}.log").read_text() for seed in range(4)}
    claims = [line for log in logs.values() for line in log.splitlines() if "GPU slot" in line]
    assert len(claims) == 4 and not any("busy" in line for log in logs.values() for line in log.splitlines()), claims
    assert {c.split("CUDA_VISIBLE_DEVICES=")[1].split()[0] for c in claims} == {"0", "1"}, claims
    assert all("(of 0,1)" in c for c in claims)
