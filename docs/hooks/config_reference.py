"""MkDocs hook: the configuration reference, rendered at build time from the schema the workflow validates against.

    mkdocs build --strict        # or: make docs (serves it), make lint (builds it)

``docs/reference/config.md`` holds two markers that this hook replaces (``on_page_markdown``):

- ``<!-- config-schema -->``: every property of ``src/finebench/config.schema.yaml`` — key path, type, default,
  allowed values, description, examples — one table per object (top level, ``training``, ``download``,
  ``tasks.<name>``, ``models.<name>``, and any object added later, e.g. ``tuning``). Defaults the schema does not
  state come from the code that applies them (``finebench.config.DEFAULTS`` / ``TRAINING_DEFAULTS``); a schema
  default that disagrees with the code's is a warning, which fails ``mkdocs build --strict``.
- ``<!-- dataset-options -->``: each registered dataset's options with their defaults (``finebench.data.DATASETS``),
  the values a ``tasks.<name>`` entry may override.
- ``<!-- architectures -->`` (docs/guides/models.md): the built-in architectures (``finebench.models.ARCHS``): name,
  family, modalities, task type, description.

So the page cannot drift from the schema or the registry. The schema and the package are read from this checkout's
``src/`` (not from whatever finebench is installed), and ``mkdocs serve`` rebuilds when the schema changes.
"""

from __future__ import annotations

import html
import logging
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
SCHEMA_MARKER = "<!-- config-schema -->"
DATASETS_MARKER = "<!-- dataset-options -->"
ARCHS_MARKER = "<!-- architectures -->"
log = logging.getLogger("mkdocs.hooks.config_reference")


def _finebench():
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    import finebench.config
    import finebench.data
    import finebench.models

    return finebench


def schema_path() -> Path:
    return _finebench().config.SCHEMA_PATH


def load_schema() -> dict:
    """The schema as finebench checks a config against it: the file with each task type's training keys merged in
    (finebench.config.SCHEMA)."""
    import copy

    return copy.deepcopy(_finebench().config.SCHEMA)


# -- walking the schema ----------------------------------------------------------------------------------------------
def resolve(node: dict, schema: dict) -> tuple[dict, str | None]:
    """``node`` with a local ``$ref`` merged in (the referring node's own keys, e.g. its description, win); and the
    name of the ``$defs`` entry it refers to, if any."""
    ref = node.get("$ref")
    if not ref:
        return node, None
    if not ref.startswith("#/$defs/"):
        raise ValueError(f"unsupported $ref {ref!r} (only #/$defs/… refs are rendered)")
    name = ref.split("/")[-1]
    target = schema["$defs"][name]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}, name


def object_branch(node: dict) -> dict | None:
    """The object schema with named properties inside ``node`` (itself, or a branch of its oneOf/anyOf)."""
    if node.get("properties"):
        return node
    for branch in node.get("oneOf", []) + node.get("anyOf", []):
        if isinstance(branch, dict) and branch.get("properties"):
            return branch
    return None


def entry_schema(node: dict) -> dict | None:
    """The schema of each entry of a name -> entry mapping (``tasks``, ``models``)."""
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) and object_branch(extra) else None


def sections(schema: dict) -> list[dict]:
    """The objects to render, breadth first: {path, node, rows: [(path, property node, required, ref)]}.
    A ``$defs`` entry is rendered once, at the first path that refers to it; later references link there."""
    out, queue, homes = [], [("", schema)], {}
    while queue:
        path, node = queue.pop(0)
        obj = object_branch(node)
        rows = []
        for name, prop in obj.get("properties", {}).items():
            key = f"{path}.{name}" if path else name
            merged, ref = resolve(prop, schema)
            home = homes.get(ref) if ref else None
            if ref and home is None:
                homes[ref] = key
            rows.append({"path": key, "node": merged, "required": name in obj.get("required", []),
                         "see": home})
            if home is None and object_branch(merged):
                queue.append((key, merged))
            elif home is None and entry_schema(merged):
                queue.append((f"{key}.<name>", entry_schema(merged)))
        out.append({"path": path, "node": obj, "rows": rows})
    return out


def property_paths(schema: dict) -> dict[str, str]:
    """{key path: description} of every property the reference renders (what tests/test_docs.py checks)."""
    return {row["path"]: " ".join(row["node"].get("description", "").split())
            for section in sections(schema) for row in section["rows"]}


# -- formatting ------------------------------------------------------------------------------------------------------
def anchor(path: str) -> str:
    return "config-" + ("top-level" if not path else path.replace(".<name>", "-name").replace(".", "-"))


def value(v) -> str:
    """A value as YAML flow text: null, true, [0, 1], [noun, verb]."""
    text = yaml.safe_dump(v, default_flow_style=True, width=float("inf"), allow_unicode=True).strip()
    return text.removesuffix("...").strip()


def code(text: str) -> str:
    text = str(text).replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def prose(text: str) -> str:
    """Schema text as table-cell Markdown: one line, HTML-escaped (``<name>`` stays visible), pipes escaped."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def type_of(node: dict, see: str | None) -> str:
    if see:
        return f"object ([same keys as `{see}`](#{anchor(see)}))"
    if "oneOf" in node or "anyOf" in node:
        return " or ".join(type_of(b, None) for b in node.get("oneOf", []) + node.get("anyOf", []))
    types = node.get("type", "any")
    types = types if isinstance(types, list) else [types]
    words = []
    for t in types:
        if t == "array" and "items" in node:
            words.append(f"list of {type_of(node['items'], None)}")
        elif t == "object" and entry_schema(node):
            words.append("mapping: name → entry")
        else:
            words.append(t)
    return " or ".join(words)


def constraints(node: dict, prefix: str = "") -> list[str]:
    out = []
    if "enum" in node:
        out.append(prefix + " · ".join(code(value(v)) for v in node["enum"]))
    for key, word in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in node:
            out.append(f"{prefix}{word} {node[key]}")
    if node.get("minLength") == 1:
        out.append(prefix + "not empty")
    elif "minLength" in node:
        out.append(f"{prefix}at least {node['minLength']} characters")
    if "pattern" in node:
        out.append(f"{prefix}{'match' if prefix == 'names ' else 'matches'} {code(node['pattern'])}")
    if "minItems" in node:
        out.append(f"at least {node['minItems']} item{'s' if node['minItems'] != 1 else ''}")
    if node.get("uniqueItems"):
        out.append("no duplicates")
    if "minProperties" in node:
        out.append(f"at least {node['minProperties']} entr{'ies' if node['minProperties'] != 1 else 'y'}")
    if isinstance(node.get("items"), dict):
        out += constraints(node["items"], prefix="each ")
    if isinstance(node.get("propertyNames"), dict):
        out += constraints(node["propertyNames"], prefix="names ")
    return out


def code_defaults() -> dict[str, object]:
    """Defaults the code applies (finebench.config), by key path."""
    cfg = _finebench().config
    out = {k: v for k, v in getattr(cfg, "DEFAULTS", {}).items() if not isinstance(v, dict)}
    out.update({f"download.{k}": v for k, v in getattr(cfg, "DEFAULTS", {}).get("download", {}).items()})
    out.update({f"training.{k}": v for k, v in getattr(cfg, "TRAINING_DEFAULTS", {}).items()})
    return out


def default_of(row: dict, defaults: dict) -> str:
    node, path = row["node"], row["path"]
    if row["required"]:
        return "required"
    if "default" in node:
        if path in defaults and defaults[path] != node["default"]:
            log.warning(f"config reference: {path}: the schema's default {node['default']!r} differs from the "
                        f"code's {defaults[path]!r} (finebench.config)")
        return code(value(node["default"]))
    if path in defaults:
        return code(value(defaults[path]))
    return "—"


def render_schema(schema: dict) -> str:
    defaults = code_defaults()
    parts = []
    for section in sections(schema):
        path, node = section["path"], section["node"]
        title = "Top level" if not path else f"`{path}`"
        parts += [f"## {title} {{#{anchor(path)}}}", ""]
        if node.get("description"):
            parts += [prose(node["description"]), ""]
        parts += ['<div class="config-table" markdown>', "", "| Key | Description |", "|---|---|"]
        for row in section["rows"]:
            p = row["node"]
            nested = object_branch(p) or entry_schema(p)
            key = code(row["path"])
            if nested and not row["see"]:
                target = row["path"] if object_branch(p) else f"{row['path']}.<name>"
                key = f"[{key}](#{anchor(target)})"
            default = default_of(row, defaults)
            facts = type_of(p, row["see"]) + (" · **required**" if default == "required" else
                                               "" if default == "—" else f" · default {default}")
            allowed = "; ".join(constraints(p))
            text = prose(p.get("description", ""))
            if p.get("examples"):
                text += " Example: " + ", ".join(code(value(e)) for e in p["examples"]) + "."
            parts.append(f"| {key}<br>{facts}" + (f"<br>{allowed}" if allowed else "") + f" | {text} |")
        parts += ["", "</div>"]
        parts.append("")
    return "\n".join(parts)


def short(v, limit: int = 60) -> str:
    text = value(v)
    if len(text) > limit and isinstance(v, list):
        head = ", ".join(value(x) for x in v[:3])
        return f"[{head}, … ({len(v)} items)]"
    return text


def render_datasets() -> str:
    datasets = _finebench().data.DATASETS
    order = sorted(datasets.values(), key=lambda s: (s.task_type != "classification", s.modality, s.name))
    rows = ['<div class="config-table" markdown>', "", "| Dataset | Kind | Options (default) |", "|---|---|---|"]
    for s in order:
        kind = f"{s.modality}, {s.task_type}" + (", downloadable" if s.downloadable else "")
        options = " · ".join(code(f"{k}: {short(v)}") for k, v in s.defaults.items())
        rows.append(f"| `{s.name}` | {kind} | {options} |")
    return "\n".join(rows + ["", "</div>"]) + "\n"


def render_archs() -> str:
    archs = _finebench().models.ARCHS
    rows = ["| Architecture | Family | Modalities | Task type | What it is |", "|---|---|---|---|---|"]
    for a in sorted(archs.values(), key=lambda a: (a.task_type != "classification", a.name)):
        rows.append(f"| `{a.name}` | {a.family} | {', '.join(a.modalities)} | {a.task_type} | {prose(a.description)} |")
    return "\n".join(rows) + "\n"


# -- MkDocs events ---------------------------------------------------------------------------------------------------
def on_page_markdown(markdown: str, page, config, files) -> str:
    if SCHEMA_MARKER in markdown:
        markdown = markdown.replace(SCHEMA_MARKER, render_schema(load_schema()))
    if DATASETS_MARKER in markdown:
        markdown = markdown.replace(DATASETS_MARKER, render_datasets())
    if ARCHS_MARKER in markdown:
        markdown = markdown.replace(ARCHS_MARKER, render_archs())
    return markdown


def on_serve(server, config, builder):
    server.watch(str(schema_path()))
    return server
