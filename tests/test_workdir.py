"""Housekeeping and failure reports (#11.7): `make clean*`, a failed job's log says why, a stale Snakemake lock left
by a kill -9 is recovered only when no snakemake runs in the folder."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finebench import workdir

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
FINEBENCH = f"{sys.executable} -m finebench"


def fill(folder: Path, paths: list[str]) -> None:
    for rel in paths:
        p = folder / rel / "f.bin" if not Path(rel).suffix else folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * 1000)


def test_clean_removes_only_what_is_cheap_and_says_so(tmp_path, capsys):
    cheap = ["results/tables", "results/plots", "results/report.html", "results/runs", "results/logs", ".snakemake"]
    costly = ["results/data", "results/mlflow.db", "results/mlartifacts", "results/mlflow", "results/downloads"]
    fill(tmp_path, cheap + costly + ["results/README.md", "config/config.yaml"])
    workdir.clean(tmp_path)
    out = capsys.readouterr().out
    assert all(not (tmp_path / p).exists() for p in cheap)
    assert all((tmp_path / p).exists() for p in costly + ["results/README.md", "config/config.yaml"])
    assert "removed results/runs (1 file, 1.0 kB)" in out and "removed .snakemake" in out
    assert "kept    results/data (prepared datasets, 1.0 kB) — remove with `make clean-data`" in out
    assert "kept    results/mlflow.db, results/mlartifacts, results/mlflow (the MLflow store" in out
    assert "`make clean-mlflow`" in out and "`make clean-downloads`" in out
    workdir.clean(tmp_path, mlflow=True, cheap=False)
    assert not (tmp_path / "results/mlflow.db").exists() and not (tmp_path / "results/mlartifacts").exists()
    assert (tmp_path / "results/data").exists() and (tmp_path / "results/downloads").exists()
    workdir.clean(tmp_path, downloads="results/downloads", cheap=False)
    workdir.clean(tmp_path, data=True, cheap=False)
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["README.md"]


def test_make_clean_targets(repo, tmp_path):
    """The Makefile targets, run in a copy of the repo's Makefile and src (they act on the current folder)."""
    (tmp_path / "Makefile").write_text((repo / "Makefile").read_text())
    os.symlink(repo / "src", tmp_path / "src")
    fill(tmp_path, ["results/runs", "results/data", "results/mlflow.db", "results/downloads"])
    out = subprocess.run(["make", "-s", "clean"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "removed results/runs" in out.stdout and "kept    results/data" in out.stdout
    assert (tmp_path / "results/mlflow.db").exists() and (tmp_path / "results/downloads").exists()
    for target, gone in (("clean-mlflow", "results/mlflow.db"), ("clean-downloads", "results/downloads"),
                         ("clean-data", "results/data")):
        out = subprocess.run(["make", "-s", target], cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode == 0 and f"removed {gone}" in out.stdout, out.stderr
        assert not (tmp_path / gone).exists()


SLEEPER = """
rule all:
    input: "done.txt"

rule work:
    output: "done.txt"
    log: "logs/work.log"
    shell: "python3 -c 'import os, time; open(\\"job.pid\\", \\"w\\").write(str(os.getpid())); time.sleep(float({config[secs]}))' > {log} 2>&1 && touch {output}"
"""  # noqa: E501 (a Snakefile's shell line, kept as written)


def wait_for(predicate, seconds=60):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.1)


def test_stale_lock_after_kill_9_is_recovered_only_when_no_snakemake_runs(tmp_path):
    (tmp_path / "Snakefile").write_text(SLEEPER)
    proc = subprocess.Popen([*SNAKEMAKE, "--cores", "1", "--config", "secs=120"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: (tmp_path / "job.pid").is_file())
        assert any((tmp_path / ".snakemake/locks").iterdir())
        # While it runs: the folder is not unlocked, `clean` refuses, a second snakemake is stopped by the lock.
        assert [pid for pid, _ in workdir.live_snakemakes(tmp_path)] == [proc.pid]
        assert workdir.unlock_stale(tmp_path, []) == 1
        assert any((tmp_path / ".snakemake/locks").iterdir())
        with pytest.raises(SystemExit, match=rf"snakemake \(pid {proc.pid}: .*\) is running in {tmp_path}"):
            workdir.clean(tmp_path)
        second = subprocess.run([*SNAKEMAKE, "--cores", "1", "--config", "secs=0"], cwd=tmp_path,
                                capture_output=True, text=True)
        assert second.returncode != 0 and "LockException" in second.stdout + second.stderr
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole pipeline, snakemake and its job, killed with SIGKILL
        proc.wait()
    # The lock is stale now: a plain rerun refuses ...
    rerun = subprocess.run([*SNAKEMAKE, "--cores", "1", "--config", "secs=0"], cwd=tmp_path, capture_output=True,
                           text=True)
    assert rerun.returncode != 0 and "LockException" in rerun.stdout + rerun.stderr
    # ... `make run`'s first step recovers it (python -m finebench.workdir unlock-stale ARGS), then the run works.
    out = subprocess.run([sys.executable, "-m", "finebench.workdir", "unlock-stale", "--config", "secs=0"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and "holds the lock of a snakemake that is gone" in out.stderr, out.stderr
    locks = tmp_path / ".snakemake/locks"
    assert not locks.exists() or not any(locks.iterdir())
    rerun = subprocess.run([*SNAKEMAKE, "--cores", "1", "--config", "secs=0"], cwd=tmp_path, capture_output=True,
                           text=True)
    assert rerun.returncode == 0 and (tmp_path / "done.txt").is_file(), rerun.stderr[-2000:]
    # Nothing locked: nothing to do, silently.
    out = subprocess.run([sys.executable, "-m", "finebench.workdir", "unlock-stale"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr == ""


@pytest.mark.parametrize("spelling", ["--directory={d}", "-d{d}", "--dir={d}"])
def test_a_snakemake_of_another_working_folder_is_found_however_it_names_it(tmp_path, spelling):
    """``--directory=DIR`` (and the other spellings argparse accepts) from another folder: the stale-lock check and
    ``make clean`` see that it runs, and the lock is not said to be stale."""
    (tmp_path / "Snakefile").write_text(SLEEPER)
    proc = subprocess.Popen([*SNAKEMAKE, "-s", str(tmp_path / "Snakefile"), spelling.format(d=tmp_path), "--cores", "1",
                             "--config", "secs=120"], cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for(lambda: (tmp_path / "job.pid").is_file())
        assert [pid for pid, _ in workdir.live_snakemakes(tmp_path)] == [proc.pid]
        assert workdir.unlock_stale(tmp_path, []) == 1 and workdir.stale_lock_hint(tmp_path, []) is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # killed: now the lock is stale, and a plain snakemake is told the one command that clears it
    hint = workdir.stale_lock_hint(tmp_path, ["--cores", "2", "--configfile", "config/my suite.yaml"])
    assert hint.endswith("clear it with:\n    snakemake --unlock --cores 2 --configfile 'config/my suite.yaml'")


def test_the_workflow_names_the_command_that_clears_a_stale_lock(repo, tmp_path):
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text(f"{tmp_path}/results/x\n")
    out = subprocess.run([*SNAKEMAKE, "-s", str(repo / "Snakefile"), "-n", "--configfile",
                          str(repo / "config" / "smoke.yaml")], cwd=tmp_path, capture_output=True, text=True)
    assert f"{locks} holds a lock, and no snakemake runs in {tmp_path}" in out.stderr
    assert (f"    snakemake --unlock -s {repo / 'Snakefile'} -n --configfile {repo / 'config' / 'smoke.yaml'}"
            in out.stderr)


def test_every_rule_log_ends_with_why_a_job_failed(repo):
    """Every rule that runs finebench redirects into its log and, on failure, appends the reason (job-failed)."""
    shells = []
    for f in sorted((repo / "workflow/rules").glob("*.smk")):
        text = re.sub(r'"\s*\n\s*"', "", f.read_text())  # join implicitly concatenated string literals
        shells += [line for line in text.splitlines() if "> {log} 2>&1" in line]
    assert len(shells) >= 6
    why = re.compile(r'> \{log\} 2>&1 \|\| (\{FINEBENCH\}|\S*python\S* -m finebench) job-failed \$\? \{log\}"')
    assert all(why.search(line) for line in shells), shells


@pytest.mark.parametrize("sig, words", [(signal.SIGKILL, "killed by SIGKILL (signal 9) — out of memory"),
                                        (signal.SIGTERM, "killed by SIGTERM (signal 15) — Snakemake")])
def test_failed_job_says_why_in_its_log_and_snakemake_output(tmp_path, sig, words):
    (tmp_path / "Snakefile").write_text(f"""
rule all:
    input: "out.txt"

rule job:
    output: "out.txt"
    log: "job.log"
    shell: "python3 -c 'import os; print(\\"working\\"); os.kill(os.getpid(), {int(sig)})' > {{log}} 2>&1 || {FINEBENCH} job-failed $? {{log}}"
""")  # noqa: E501 (a Snakefile's shell line, kept as written)
    out = subprocess.run([*SNAKEMAKE, "--cores", "1", "--show-failed-logs"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode != 0
    log = (tmp_path / "job.log").read_text().splitlines()
    assert log[0] == "working" and log[-1].startswith(
        f"[finebench] job failed: exit status {128 + sig}: {words}"), log
    # shown by Snakemake (the job's stderr, and the log with --show-failed-logs)
    assert words in out.stdout + out.stderr


def test_sigterm_is_logged_and_a_half_built_dataset_removed(tmp_path):
    """Any finebench command stopped by SIGTERM says so in its log, and prepare leaves no partial folder."""
    import official

    for w in ("up", "down"):
        for i in range(40):
            official.wav(tmp_path / "a" / w / f"{i}.wav", i)
    out = tmp_path / "data" / "words"
    code = ("import sys, time, finebench.data.speech as sp\n"
            "orig = sp.read_clip\n"
            "def slow(*a):\n    time.sleep(0.05)\n    return orig(*a)\n"
            "sp.read_clip = slow\n"
            "from finebench.cli import main\n"
            f"sys.exit(main(['prepare', '--task', 'words', '--dataset', 'audiofolder', '--options', "
            f"'{json.dumps({'root': str(tmp_path / 'a')})}', '--out', '{out}']))\n")
    with open(tmp_path / "prepare.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", code], stderr=log, stdout=log)
        wait_for(lambda: list(out.parent.glob(".words.partial-*/train_x.npy")))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    text = (tmp_path / "prepare.log").read_text()
    assert "[finebench] stopping: exit status 143: killed by SIGTERM (signal 15)" in text
    assert not list(out.parent.glob(".words.partial-*")) and not out.exists()


def test_nohup_keeps_ignoring_sighup(tmp_path):
    """`nohup make run`: jobs inherit an ignored SIGHUP, and finebench must not turn it back into an exit."""
    code = ("import signal, sys, time\n"
            "from finebench import cli\n"
            "cli.cmd_list = lambda args: (print('ready', flush=True), time.sleep(3), print('survived', flush=True))"
            " and 0\n"
            "sys.exit(cli.main(['list']))\n")
    proc = subprocess.Popen(["nohup", sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=tmp_path)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGHUP)
    assert proc.stdout.readline().strip() == "survived" and proc.wait(timeout=30) == 0
