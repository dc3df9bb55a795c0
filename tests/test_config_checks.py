"""Config checks that run before any job (#11.5): numbers like 1e-3, models whose modality has no task, the tracking
URI (SQLite folder writable, tracking server answering within seconds)."""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from finebench import config
from finebench.errors import ConfigError


@pytest.fixture
def smoke(repo):
    return yaml.safe_load((repo / "config" / "smoke.yaml").read_text())


def test_yaml_loader_reads_exponent_floats_as_numbers():
    doc = config.load_yaml("a: 1e-3\nb: 5E4\nc: 1.0e3\nd: -2.5e-2\ne: 0.001\nf: '1e-3'\ng: 12\nh: 1e\ni: 3e-4x\n")
    assert doc == {"a": 0.001, "b": 50000.0, "c": 1000.0, "d": -0.025, "e": 0.001, "f": "1e-3", "g": 12,
                   "h": "1e", "i": "3e-4x"}
    assert yaml.safe_load("a: 1e-3")["a"] == "1e-3"  # what PyYAML alone does: the reason for the loader


def test_coerce_numbers_in_place_names_the_keys():
    cfg = {"training": {"lr": "1e-3", "epochs": 2}, "models": {"m": {"training": {"weight_decay": "5e-2"},
                                                                     "arch": "crnn"}}, "seeds": [0]}
    assert sorted(config.coerce_numbers(cfg)) == ["models.m.training.weight_decay", "training.lr"]
    assert cfg["training"]["lr"] == 0.001 and cfg["models"]["m"]["training"]["weight_decay"] == 0.05
    assert cfg["models"]["m"]["arch"] == "crnn" and cfg["training"]["epochs"] == 2


def test_check_config_accepts_1e_minus_3(repo, tmp_path, smoke):
    text = (repo / "config" / "smoke.yaml").read_text()
    assert "lr:" in text
    smoke["training"]["lr"] = "LR"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(smoke).replace("lr: LR", "lr: 1e-3"))
    assert "lr: 1e-3" in path.read_text()
    cfg = config.load(path)
    assert cfg["training"]["lr"] == 0.001
    assert config.resolve_spec(cfg, *config.runs(cfg)[0])["training"]["lr"] == 0.001
    out = subprocess.run([sys.executable, "-m", "finebench", "check-config", str(path)], capture_output=True, text=True)
    assert out.returncode == 0 and ": OK" in out.stdout, out.stderr


def test_snakemake_dry_run_accepts_1e_minus_3(repo, tmp_path, smoke):
    """Snakemake reads --configfile with PyYAML itself: the Snakefile coerces before validating."""
    smoke["training"]["lr"] = "LR"
    smoke["tracking_uri"] = f"sqlite:///{tmp_path}/mlflow.db"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(smoke).replace("lr: LR", "lr: 1e-3"))
    snakemake = shutil.which("snakemake", path=os.path.dirname(sys.executable))
    out = subprocess.run([snakemake, "-n", "-p", "--cores", "1", "--configfile", str(path), "-s",
                          str(repo / "Snakefile"), "--directory", str(tmp_path)], capture_output=True, text=True,
                         cwd=tmp_path)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert '\\"lr\\": 0.001' in log or '"lr": 0.001' in log, log[-3000:]  # the train jobs' spec
    # the string, quoted as a job's spec would carry it (a bare "1e-3" can occur in the run's random UUID)
    assert not re.search(r'lr\\?": \\?"1e-3', log), log[-3000:]


def test_model_whose_modality_has_no_task_is_a_warning(smoke, capsys):
    smoke["tasks"] = {t: v for t, v in smoke["tasks"].items() if config.task_modality_of(smoke, t) != "speech"}
    speech_models = [m for m, v in smoke["models"].items() if v["modality"] == "speech"]
    assert speech_models
    config.check(smoke)  # a warning, not an error
    err = capsys.readouterr().err
    for m in speech_models:
        assert f"WARNING models.{m}: no task in `tasks:` is speech" in err
    assert config.modality_warnings(smoke) and len(config.modality_warnings(smoke)) == len(speech_models)


def test_task_without_models_is_still_an_error(smoke):
    smoke["models"] = {m: v for m, v in smoke["models"].items() if v["modality"] != "text"}
    with pytest.raises(ConfigError, match=r"tasks\.\w+: no model in `models:` has modality 'text'"):
        config.check(smoke)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_sqlite_store_in_read_only_folder_fails_fast_naming_the_path(tmp_path, smoke):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    smoke["tracking_uri"] = f"sqlite:///{ro}/sub/mlflow.db"
    with pytest.raises(ConfigError, match=rf"tracking_uri: cannot create or write the MLflow database "
                                          rf"{ro}/sub/mlflow.db: the folder {ro} is not writable"):
        config.check(smoke)


def test_sqlite_store_checks(tmp_path, monkeypatch):
    config.check_tracking_uri(f"sqlite:///{tmp_path}/new/deeper/mlflow.db")  # creatable: fine
    with pytest.raises(ConfigError, match=rf"tracking_uri: {tmp_path} is a folder"):
        config.check_tracking_uri(f"sqlite:///{tmp_path}")
    # Without relying on file permissions (tests may run as root): a folder os.access says is not writable.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    with pytest.raises(ConfigError, match=rf"the folder {tmp_path} is not writable"):
        config.check_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    db = tmp_path / "x" / "mlflow.db"
    db.parent.mkdir()
    db.write_bytes(b"")
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(db) else real_access(p, mode))
    with pytest.raises(ConfigError, match=rf"the MLflow database {db} is not writable"):
        config.check_tracking_uri(f"sqlite:///{db}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tracking_server_that_refuses_fails_in_seconds_naming_the_url(smoke):
    url = f"http://127.0.0.1:{free_port()}"
    smoke["tracking_uri"] = url
    with pytest.raises(ConfigError, match=rf"tracking_uri: the MLflow server {url} does not answer"):
        config.check(smoke)
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"Connection refused"):
        config.check_tracking_uri(url)
    assert time.monotonic() - t0 < 3  # not MLflow's minutes of retries


def test_tracking_server_that_hangs_times_out():
    with socket.socket() as server:  # accepts connections, never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match=r"does not answer .*within 1 s"):
            config.check_tracking_uri(url, timeout=1.0)
        assert time.monotonic() - t0 < 4


class Health(BaseHTTPRequestHandler):
    """What an MLflow server answers on /health."""

    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


def test_tracking_server_that_answers_passes():
    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config.check_tracking_uri(f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()


def test_a_server_that_is_not_mlflow_is_named():
    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404 if self.path == "/health" else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(ConfigError, match=rf"tracking_uri: {url} answers, but not as an MLflow tracking server "
                                              rf"\(GET {url}/health: HTTP 404\)"):
            config.check_tracking_uri(url)
    finally:
        server.shutdown()
        server.server_close()


def test_init_tracking_refuses_an_unreachable_server_in_seconds(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "finebench", "init-tracking", "--tracking-uri", url,
                          "--experiment", "x", "--artifact-root", str(tmp_path / "a"),
                          "--out", str(tmp_path / "e.json")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and f"the MLflow server {url} does not answer" in out.stderr
    assert len(out.stderr.splitlines()) <= 2 and time.monotonic() - t0 < 30


def test_cached_check_still_checks_the_tracking_uri_and_warns(smoke, tmp_path, capsys):
    """check_cached skips the registry checks for a config it has seen, not the tracking server, which may have gone."""
    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    smoke["tasks"] = {t: v for t, v in smoke["tasks"].items() if config.task_modality_of(smoke, t) != "speech"}
    smoke["tracking_uri"] = url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert config.check_cached(smoke, tmp_path) is True
        assert "no task in `tasks:` is speech" in capsys.readouterr().err
        assert config.check_cached(smoke, tmp_path) is False  # seen: the registry checks are skipped ...
        assert "no task in `tasks:` is speech" in capsys.readouterr().err  # ... the warning is still shown
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ConfigError, match=rf"the MLflow server {url} does not answer"):
        config.check_cached(smoke, tmp_path)  # ... and the server that went away is caught


@pytest.mark.parametrize("dataset, option, model", [
    ("imagefolder", "root", {"family": "cnn", "modality": "vision", "arch": "small_cnn"}),
    ("audiofolder", "root", {"family": "cnn", "modality": "speech", "arch": "small_cnn"}),
    ("text_table", "path", {"family": "cnn", "modality": "text", "arch": "textcnn"}),
    ("cub200", "root", {"family": "cnn", "modality": "vision", "arch": "small_cnn"}),
])
def test_a_dataset_path_that_does_not_exist_is_named_before_any_job(tmp_path, dataset, option, model):
    missing = tmp_path / "no-such-data"
    cfg = {"experiment": "x", "seeds": [0], "tasks": {"mine": {"dataset": dataset, option: str(missing)}},
           "models": {"m": model}}
    with pytest.raises(ConfigError, match=rf"^tasks\.mine\.{option}: {missing} does not exist"):
        config.check(cfg)
    missing.mkdir() if option == "root" else missing.write_text("text,label\n")
    config.check(cfg)


@pytest.mark.parametrize("options, message", [
    ({"scale": 5}, r"tasks\.sr\.scale: 5 not supported; valid: 2, 3, 4"),
    ({"degradation": "lanczos"}, r"tasks\.sr\.degradation: unknown 'lanczos'; valid: matlab_bicubic, pil_bicubic"),
    ({"patch_size": 0}, r"tasks\.sr\.patch_size: 0 — a positive whole number"),
])
def test_super_resolution_options_are_checked_before_any_job(options, message):
    cfg = {"experiment": "x", "seeds": [0], "tasks": {"sr": {"dataset": "skimage_photos", **options}},
           "models": {"edsr": {"family": "cnn", "modality": "vision", "arch": "edsr"}}}
    with pytest.raises(ConfigError, match=message):
        config.check(cfg)


@pytest.mark.parametrize("options, message", [
    ({"val_fraction": 1.5}, r"tasks\.t\.val_fraction: 1\.5 — a fraction, at least 0 and below 1"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, r"tasks\.t\.val_fraction \+ test_fraction: 1 — they must leave"),
    ({"speakers": -1}, r"tasks\.t\.speakers: -1 — a whole number, 0 or more"),
    ({"speakers": 2.5}, r"tasks\.t\.speakers: 2\.5 — a whole number"),
])
def test_dataset_option_values_are_checked_before_any_job(options, message):
    cfg = {"experiment": "x", "seeds": [0], "tasks": {"t": {"dataset": "speech_commands_synth", **options}},
           "models": {"m": {"family": "cnn", "modality": "speech", "arch": "small_cnn"}}}
    with pytest.raises(ConfigError, match=message):
        config.check(cfg)


@pytest.mark.parametrize("dataset, option, model", [
    ("imagefolder", "root", {"family": "cnn", "modality": "vision", "arch": "small_cnn"}),
    ("text_table", "path", {"family": "cnn", "modality": "text", "arch": "textcnn"}),
])
def test_a_bring_your_own_dataset_without_its_path_is_named(dataset, option, model):
    """The one check for every source whose path has no default and nothing to download (no source named in it)."""
    cfg = {"experiment": "x", "seeds": [0], "tasks": {"mine": {"dataset": dataset}}, "models": {"m": model}}
    with pytest.raises(ConfigError, match=rf"^tasks\.mine\.{option}: required for dataset '{dataset}' \(nothing to "
                                          rf"download for it\)"):
        config.check(cfg)
