"""results/ on a shared file system (issue 21): what another user can write there must not run code as ours, and
prepared data that was damaged after preparation fails its jobs by name instead of training silently to chance."""

import json
import pathlib
import shutil

import numpy as np
import pytest

from finebench.data import Prepared
from finebench.errors import FinebenchError
from test_resume import spec, tiny_data  # noqa: F401 (a fixture)


class Planted:
    """Unpickling this calls Path.touch: what any code in a planted pickle could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


@pytest.fixture
def data_copy(tiny_data, tmp_path):
    """A private copy of the prepared tiny task, free to damage."""
    return pathlib.Path(shutil.copytree(tiny_data, tmp_path / "tf"))


@pytest.mark.parametrize("name", ["checkpoint.pt", "finished.pt"])
def test_a_planted_pickle_checkpoint_is_not_run(tmp_path, data_copy, experiment_file, capsys, name):
    import torch

    from finebench.train import fit, spec_hash, train_hash

    s, out, marker = spec(epochs=2), tmp_path / "run", tmp_path / "code-ran"
    out.mkdir()
    torch.save({"spec_hash": spec_hash(s), "train_hash": train_hash(s), "finished": name == "finished.pt",
                "state": {"epoch": 1, "history": [Planted(marker)]}}, out / name)
    result = fit(s, data_copy, out, experiment_file, device="cpu")
    err = capsys.readouterr().err
    assert not marker.exists(), "unpickling the planted checkpoint ran its code"
    assert f"ignoring {out / name}: it holds objects other than tensors and plain values" in err
    assert "epoch 1:" in err and "epoch 2:" in err and result["status"] == "FINISHED"  # trained afresh


def test_checkpoints_hold_only_tensors_and_plain_values(tmp_path, data_copy, experiment_file):
    """What finebench writes loads with weights_only=True (test_resume checks that a resumed run equals an
    uninterrupted one, through these RNG states)."""
    import torch

    from finebench.train import fit

    out = tmp_path / "run"
    fit(spec(epochs=2, keep_checkpoint=True), data_copy, out, experiment_file, device="cpu")
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)  # raises if anything else is pickled
    assert ckpt["state"]["epoch"] == 2 and isinstance(ckpt["rng"]["numpy"][1], torch.Tensor)


def test_a_pretrained_file_holding_code_is_refused_by_name(tmp_path):
    import torch

    from finebench.models.registry import load_pretrained_file

    path, marker = tmp_path / "weights.pth", tmp_path / "code-ran"
    torch.save({"conv.weight": torch.zeros(1), "evil": Planted(marker)}, path)
    with pytest.raises(FinebenchError, match=r"pretrained_file: .*weights.pth holds objects other than tensors"):
        load_pretrained_file(torch.nn.Conv2d(1, 1, 1), str(path))
    assert not marker.exists()


def test_the_manifest_records_every_array(tiny_data):
    manifest = json.loads((tiny_data / "manifest.json").read_text())
    records = manifest["arrays"]
    assert sorted(records) == sorted(f"{s}_{k}.npy" for s in ("train", "val", "test") for k in "xy")
    x = np.load(tiny_data / "train_x.npy")
    assert records["train_x.npy"]["shape"] == list(x.shape) and records["train_x.npy"]["dtype"] == x.dtype.str
    assert len(records["train_x.npy"]["sha256"]) == 64
    assert Prepared(tiny_data).verify().endswith("shapes, sizes and sha256 checked")


def test_a_truncated_array_fails_every_job_naming_the_file_and_the_fix(tmp_path, data_copy, experiment_file):
    from finebench.train import fit

    x = data_copy / "train_x.npy"
    x.write_bytes(x.read_bytes()[:-1000])
    with pytest.raises(FinebenchError) as exc:
        fit(spec(epochs=1), data_copy, tmp_path / "run", experiment_file, device="cpu")
    message = str(exc.value)
    assert str(x) in message and "truncated" in message and f"remove {data_copy} and rerun" in message
    # the read side names the folder too, should anything read it without the check
    with pytest.raises(FinebenchError, match=r"split 'train' cannot be read .* prepare it again"):
        Prepared(data_copy).arrays("train")


def test_a_zero_filled_array_of_the_right_size_fails_by_its_hash(tmp_path, data_copy, experiment_file):
    from finebench.train import fit

    x = data_copy / "val_x.npy"
    arr = np.load(x)
    np.save(x, np.zeros_like(arr))
    with pytest.raises(FinebenchError, match=r"val_x.npy: its content changed since it was prepared"):
        fit(spec(epochs=1), data_copy, tmp_path / "run", experiment_file, device="cpu")
    # above the hash limit only shapes and sizes are checked, and the log says how to check the rest
    assert "sha256 not" in Prepared(data_copy).verify(full=False)
    with pytest.raises(FinebenchError, match="content changed"):
        Prepared(data_copy).verify(full=True)


def test_an_array_of_another_shape_or_a_missing_one_is_named(data_copy):
    np.save(data_copy / "test_y.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(FinebenchError, match=r"test_y.npy: holds <i8 \[3\], prepared as <i8 \[\d+\]"):
        Prepared(data_copy).verify()
    (data_copy / "test_y.npy").unlink()
    with pytest.raises(FinebenchError, match=r"test_y.npy: missing from the prepared data"):
        Prepared(data_copy).verify()


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 160 KiB tmpfs (root only): room for a run's small files, not for its checkpoint."""
    import subprocess

    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_a_full_disk_is_named_the_run_ends_failed_and_nothing_half_written_stays(tmp_path, data_copy, experiment_file,
                                                                               small_tmpfs):
    import subprocess
    import sys

    from test_resume import runs_of, train_cmd

    out, log = small_tmpfs / "run", small_tmpfs / "run.log"
    planted = small_tmpfs / "checkpoint.pt.tmp999999"  # left by a process that is gone: swept by the next run
    out.mkdir()
    (out / planted.name).write_bytes(b"x" * 1000)
    job = subprocess.run(train_cmd(spec(epochs=2), data_copy, experiment_file, out), capture_output=True, text=True)
    err = job.stderr
    assert job.returncode == 2, err
    assert f"error: no space left writing to {out}" in err and "MiB free of" in err and "then rerun" in err
    assert "unexpected pos" not in err.splitlines()[-1]
    assert f"removed {out / planted.name}" in err
    assert sorted(p.name for p in out.iterdir()) == ["spec.json"], "a temporary file stayed behind"
    assert json.loads((out / "spec.json").read_text())["model"] == "crnn"  # whole, not 0 bytes
    _, runs = runs_of(experiment_file)
    assert [r.info.status for r in runs] == ["FAILED"]
    assert runs[0].data.tags["error"].startswith("FinebenchError: no space left writing to")

    # job-failed, appending to a log on the full file system, says so and keeps the status instead of crashing
    filler = small_tmpfs / "filler"
    with pytest.raises(OSError), open(filler, "wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()
    done = subprocess.run([sys.executable, "-m", "finebench", "job-failed", "2", str(log)], capture_output=True,
                          text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "job failed: exit status 2" in done.stderr and f"not appended to {log}" in done.stderr
