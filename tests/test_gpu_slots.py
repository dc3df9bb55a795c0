"""A local run on a machine with several GPUs: each concurrent training job trains on the least busy GPU.

There is no GPU here: the tests give the jobs GPU ids through ``CUDA_VISIBLE_DEVICES`` or a stand-in ``nvidia-smi``
that lists GPUs as the real one does (``GPU 0: NVIDIA H200 (UUID: …)``); what they check is which GPU each job keeps
visible. The CPU build of torch then trains on the CPU, as ``device: auto`` does without a GPU.
"""

import os
import signal
import subprocess
import sys
import time
import types

import pytest
import yaml

from finebench import cluster

CLAIM = ("import sys, time; from finebench.cluster import claim_gpu; "
         "print(claim_gpu(sys.argv[1], log=lambda m: None), flush=True); time.sleep(60)")


def fake_nvidia_smi(folder, gpus=2, hang=False):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"GPU {i}: NVIDIA H200 (UUID: GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd)" for i in range(gpus)]
    lines.insert(1, "  MIG 1g.18gb     Device  0: (UUID: MIG-11111111-2222-3333-4444-555555555555)")
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + ("exec sleep 30\n" if hang else "cat <<'EOF'\n" + "\n".join(lines) + "\nEOF\n"))
    script.chmod(0o755)
    return folder


@pytest.fixture
def claims_env(tmp_path, monkeypatch):
    monkeypatch.setenv(cluster.CLAIM_GPU_ENV, "1")
    monkeypatch.setenv(cluster.GPU_LOCKS_ENV, str(tmp_path / "locks"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    return tmp_path


def start_job(device="auto"):
    proc = subprocess.Popen([sys.executable, "-c", CLAIM, device], stdout=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    return proc, proc.stdout.readline().strip()


def test_concurrent_jobs_spread_over_the_gpus_and_a_killed_job_frees_its_place(claims_env):
    jobs = []
    try:
        for _ in range(4):
            jobs.append(start_job())
        assert [gpu for _, gpu in jobs] == ["3", "5", "3", "5"]  # each GPU once, then each a second time
        jobs[1][0].send_signal(signal.SIGKILL)  # kill -9 releases its lock: GPU 5 has one job less
        jobs[1][0].wait()
        jobs.append(start_job())
        assert jobs[-1][1] == "5"
    finally:
        for job, _ in jobs:
            job.kill()
            job.wait()


def test_nothing_is_chosen_for_the_cpu_outside_a_local_run_or_with_one_gpu(claims_env, monkeypatch):
    assert start_job("cpu")[1] == "None"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,-1,1")  # CUDA stops at the first invalid entry: GPU 0 only
    assert cluster.visible_gpus() == ["0"] and start_job()[1] == "None"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", " GPU-8a1b2c3d-0000-1111-2222-333344445555, MIG-9f8e7d6c-1/2/0")
    assert cluster.visible_gpus() == ["GPU-8a1b2c3d-0000-1111-2222-333344445555", "MIG-9f8e7d6c-1/2/0"]
    monkeypatch.delenv(cluster.CLAIM_GPU_ENV)  # not spawned by a local run (a Slurm job, a job started by hand)
    assert start_job()[1] == "None"


def test_gpus_are_counted_with_nvidia_smi_without_touching_cuda(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.setenv("PATH", f"{fake_nvidia_smi(tmp_path / 'bin', gpus=3)}:{os.environ['PATH']}")
    assert cluster.visible_gpus() == ["0", "1", "2"]  # the MIG line is not a GPU of its own
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # CUDA numbers the GPUs as nvidia-smi does
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert cluster.visible_gpus() == []  # no driver, no GPU


@pytest.mark.slow
def test_a_hanging_nvidia_smi_costs_ten_seconds_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", f"{fake_nvidia_smi(tmp_path / 'bin', hang=True)}:{os.environ['PATH']}")
    said, t0 = [], time.monotonic()
    assert cluster.visible_gpus(log=said.append) == []
    assert time.monotonic() - t0 < 20 and "nvidia-smi -L did not answer" in said[0]


def test_only_a_local_run_tells_its_jobs_to_claim(monkeypatch):
    def workflow(main=True, cluster_run=False):
        return types.SimpleNamespace(is_main_process=main, non_local_exec=cluster_run, dryrun=False,
                                     execution_settings=None)

    for wf, claims in ((workflow(cluster_run=True), False), (workflow(main=False), False), (workflow(), True)):
        monkeypatch.delenv(cluster.CLAIM_GPU_ENV, raising=False)
        cluster.export_gpu_claims(wf)
        assert (os.environ.get(cluster.CLAIM_GPU_ENV) == "1") is claims


def test_snakemake_knows_its_executor_when_onstart_runs(tmp_path):
    """The claim is exported in onstart because only then does Snakemake know a cluster executor (while the Snakefile
    is read, a Slurm run still looks local — and sbatch --export=ALL would hand the variable to every Slurm job)."""
    (tmp_path / "Snakefile").write_text(
        "import os\nfrom finebench.cluster import CLAIM_GPU_ENV, export_gpu_claims\n"
        "onstart:\n    export_gpu_claims(workflow)\n    print('CLAIM', os.environ.get(CLAIM_GPU_ENV), flush=True)\n"
        "localrules: all\n"  # nothing is submitted, even where a Slurm cluster answers
        "rule all:\n    shell: 'true'\n")
    env = {k: v for k, v in os.environ.items() if k != cluster.CLAIM_GPU_ENV}
    runs = {}
    slurm = ["--executor", "slurm", "--jobs", "1", "--slurm-init-seconds-before-status-checks", "1"]
    for name, args in (("local", ["--cores", "1"]), ("slurm", slurm)):
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--directory", str(tmp_path), "-s",
                               str(tmp_path / "Snakefile"), "--forceall", *args],
                              capture_output=True, text=True, env=env, timeout=120)
        runs[name] = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("CLAIM")]
    assert runs == {"local": ["CLAIM 1"], "slurm": ["CLAIM None"]}, runs


@pytest.mark.slow
def test_a_local_run_with_two_gpus_puts_its_two_concurrent_jobs_on_one_each(repo, tmp_path):
    """``snakemake --resources gpu=2`` (``make benchmark GPUS=2``) on a machine with two GPUs: the two training jobs
    that run at once keep GPU 0 and GPU 1 visible, one each, and no job ever shares a GPU."""
    cfg = {
        "experiment": "slots", "seeds": [0, 1, 2, 3], "device": "auto", "threads": 1,
        "tasks": {"tf": {"dataset": "typefaces", "families": ["NimbusSans", "URWGothic"], "styles_per_family": 1,
                         "vocabulary": 100, "train_per_class": 8, "val_per_class": 4, "test_per_class": 4}},
        "training": {"epochs": 1, "batch_size": 8},
        "models": {"cnn": {"family": "cnn", "modality": "vision", "arch": "small_cnn", "channels": [4, 8]}},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PATH": f"{fake_nvidia_smi(tmp_path / 'bin')}:{os.environ['PATH']}",
           cluster.GPU_LOCKS_ENV: str(tmp_path / "locks")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory",
                           str(tmp_path), "--cores", "2", "results/tables/leaderboard.csv", "--resources", "gpu=2",
                           "--configfile", str(tmp_path / "c.yaml")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    logs = [(tmp_path / f"results/logs/train/tf/cnn/seed{seed}.log").read_text() for seed in range(4)]
    claims = [line for log in logs for line in log.splitlines() if "CUDA_VISIBLE_DEVICES=" in line]
    assert len(claims) == 4 and all("(no other finebench job on it)" in c for c in claims), claims
    assert {c.split("CUDA_VISIBLE_DEVICES=")[1] for c in claims} == {"0", "1"}, claims
