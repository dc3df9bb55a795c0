"""finebench installed like a package: a non-editable install (a wheel, in a fresh venv, run outside the repository)
finds its config schema and download lock file, which ship as package data.

This test installs finebench itself for real and borrows the already installed dependencies (torch alone is GBs);
`make check-install` is the full check: `pip install .` into a throwaway venv, every dependency included.
"""

import shutil
import subprocess
import sys
import sysconfig

import pytest

pytestmark = pytest.mark.slow


def run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_wheel_install_finds_schema_and_lock_file(repo, tmp_path):
    src = tmp_path / "src"  # build from a copy: building in place would leave build/ and egg-info in the repository
    shutil.copytree(repo / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(repo / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", src])
    wheel = next((tmp_path / "dist").glob("finebench-*.whl"))

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel])
    site = run([venv / "bin" / "python", "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # the dependencies, after the venv's own site-packages (a plain path: the editable finebench's .pth is not read)
    (venv / site.split(str(venv) + "/", 1)[1] / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(repo / "config" / "config.yaml", work / "config.yaml")
    where = run([venv / "bin" / "python", "-c", "import finebench.config as c, finebench.data.download as d; "
                 "print(c.__file__, c.SCHEMA_PATH, d.LOCK_FILE, sep='\\n')"], cwd=work).stdout.split()
    assert all(p.startswith(site) for p in where), where  # the installed copy, not the source tree
    out = run([venv / "bin" / "python", "-m", "finebench", "check-config", "config.yaml"], cwd=work).stdout
    assert "config.yaml: OK" in out
