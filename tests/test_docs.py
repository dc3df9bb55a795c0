"""The documentation site builds strictly, its configuration reference covers the whole schema, the README stays short.

    .venv/bin/python -m pytest -q tests/test_docs.py      # ~3 s: one `mkdocs build --strict`

The reference page is generated from src/finebench/config.schema.yaml by docs/hooks/config_reference.py; this test
walks the schema on its own and looks for every key path, with its description, in one row of the built HTML.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README_LIMIT = 12 * 1024


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log[-4000:]}"
    assert "WARNING" not in log, log
    return out


def schema_properties(schema: dict) -> dict[str, str]:
    """{key path: description} for every property, breadth first; a `$ref`'d definition under the first path that
    refers to it (`training`), the entries of a name -> entry mapping as `<name>` (`tasks.<name>.dataset`)."""
    found, queue, homes = {}, [("", schema)], set()
    while queue:
        prefix, node = queue.pop(0)
        branches = [node] + [b for b in node.get("oneOf", []) if isinstance(b, dict)]
        for branch in branches:
            for name, prop in (branch.get("properties") or {}).items():
                path = f"{prefix}.{name}" if prefix else name
                ref = prop.get("$ref")
                target = schema["$defs"][ref.split("/")[-1]] if ref else prop
                found[path] = " ".join(str(prop.get("description") or target.get("description", "")).split())
                if ref and ref in homes:
                    continue
                if ref:
                    homes.add(ref)
                queue.append((path, target))
                if isinstance(target.get("additionalProperties"), dict):
                    queue.append((f"{path}.<name>", target["additionalProperties"]))
    return found


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_site_builds_strictly_and_reference_lists_every_schema_key(site):
    page = (site / "reference" / "config" / "index.html").read_text()
    rows = [text_of(r) for r in re.findall(r"<tr>(.*?)</tr>", page, re.S)]
    from finebench.config import SCHEMA as merged  # the file with each task type's training keys

    properties = schema_properties(merged)
    assert len(properties) >= 40 and "training.precision" in properties and "models.<name>.arch" in properties
    assert "training.label_smoothing" in properties and "training.length_buckets" in properties  # the types' keys
    missing = []
    for path, description in properties.items():
        assert description, f"{path}: no description in config.schema.yaml"
        if not any(row.startswith(path + " ") and description in row for row in rows):
            missing.append(path)
    assert not missing, f"not on the reference page with their description: {missing}"


def test_reference_shows_defaults_from_schema_and_code(site):
    page = text_of((site / "reference" / "config" / "index.html").read_text())
    assert "tracking_uri string · default sqlite:///results/mlflow.db" in page  # the schema's default
    assert "training.epochs integer · default 8" in page  # finebench.config.TRAINING_DEFAULTS
    assert "device string · default auto auto · cpu · cuda" in page  # default, then the enum
    assert "typefaces" in page and "train_per_class: 120" in page  # dataset options from the registry


def test_every_page_is_in_the_built_site(site):
    pages = {p.relative_to(REPO / "docs").with_suffix("") for p in (REPO / "docs").rglob("*.md")}
    for page in pages:
        built = site / page.parent / "index.html" if page.name == "index" else site / page / "index.html"
        assert built.is_file(), f"docs/{page}.md was not built"


def test_readme_is_short_and_starts_with_the_two_commands():
    readme = (REPO / "README.md").read_bytes()
    assert len(readme) <= README_LIMIT, f"README.md is {len(readme)} bytes (at most {README_LIMIT})"
    first_block = re.search(r"```[a-z]*\n(.*?)```", readme.decode(), re.S)
    assert first_block, "README.md has no code block"
    lines = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert "make run" in lines and "make test" in lines, first_block.group(1)
