"""The one table renderer, and what finebench.report asks of a task type's tables (:class:`Tables`).

A task type's ``tables`` names a subclass of :class:`Tables` ("module:Class"). The base class renders every type's
part of the shared leaderboard (Markdown and HTML), costs and families files from declarations: the type's metrics
(finebench.tasks.Metric: label, scale, format, direction; ``interval`` says whether a secondary metric's seed
interval is kept and shown) and its own columns (:class:`Column`: a header and how a row shows it). The cells of
the primary metric are written once, here: the mean ± the combined half-width over seeds and test examples, the
seed-only interval marked † where there are no per-example scores, **bold** for the task's best and ≈ for a model
tied with it. A type keeps only what is truly its own: its fields, baseline rows, headings and prose, extra
expansions (super-resolution's test sets), its ranks and published references.

Required of a subclass: ``BOARD_COLUMNS`` and ``FAMILY_COLUMNS`` (its two CSVs' columns, in order), ``titles`` and
``intros`` (per shared file), ``heading(g)``, ``board_fields(g)``, ``plots(...)``, ``leaderboard_columns`` and
``cost_columns``. The rest has defaults: no baseline rows, no expansion, no per-example scores (seed-only
statistics), no references, no extra CSVs or sections.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from finebench import tuning
from finebench.stats import human

if TYPE_CHECKING:
    from finebench.tasks.registry import Metric, TaskType

DASH = "—"


@dataclass(frozen=True)
class Column:
    """A column of a rendered table: its header and its cell for a model's row (``cell``) and for a baseline row
    (``baseline``; None: "—")."""

    header: str
    cell: Callable[[pd.Series], Any]
    baseline: Callable[[pd.Series], Any] | None = None


def missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def show(metric: Metric, x) -> str:
    """A value of ``metric`` as the tables show it ("—" where there is none)."""
    return DASH if missing(x) else metric.show(float(x))


def interval_cell(metric: Metric, mean, comb, ci, n: int) -> str:
    """The primary metric's cell: mean ± the combined 95 % half-width over seeds and test examples ("(1 seed)": the
    test sample's alone); without per-example scores, the seed-only interval marked †; a baseline (no seeds): the
    value alone."""
    if not n:
        return show(metric, mean)
    if not missing(comb):
        return f"{show(metric, mean)} ± {show(metric, comb)}" + (" (1 seed)" if n < 2 else "")
    if n > 1 and not missing(ci):
        return f"{show(metric, mean)} ± {show(metric, ci)} †"
    return f"{show(metric, mean)} (1 seed, no CI) †"


def seed_cell(metric: Metric, mean, ci, n: int) -> str:
    """A secondary metric's cell: mean ± its 95 % half-width over seeds (Student's t)."""
    if missing(mean) or not n:
        return show(metric, mean)
    if n < 2 or missing(ci):
        return f"{show(metric, mean)} (1 seed, no CI)"
    return f"{show(metric, mean)} ± {show(metric, ci)}"


def mark(text: str, row: pd.Series, bold: Callable[[str], str]) -> str:
    """``text`` in bold for the task's best, followed by ≈ for a model tied with it."""
    return bold(text) if row["is_best"] else (f"{text} ≈" if row["tie_with_best"] else text)


def is_baseline(row: pd.Series) -> bool:
    return bool(row.get("is_baseline", False))


def models_of(board: pd.DataFrame) -> pd.DataFrame:
    """The board's model rows (no baselines)."""
    return board[~board["is_baseline"].astype(bool)] if "is_baseline" in board else board


def tabulate_rows(rows: list[list], headers: list[str], fmt: str = "github") -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)


def html_paragraph(text: str, tables: bool = False) -> str:
    """A paragraph of the tables' Markdown (an intro, a note: ``**bold**``, ``*italic*``, backticks; with ``tables``
    whole sections with headings and pipe tables) as HTML with Python-Markdown, the docs site's renderer; raw HTML
    and entities in the text stay text (a model name, a config value). Empty text gives ``""``."""
    import markdown

    if not text:
        return ""
    md = markdown.Markdown(extensions=["tables"] if tables else [])
    md.preprocessors.deregister("html_block")
    for pattern in ("html", "entity"):
        md.inlinePatterns.deregister(pattern)
    return md.convert(text)


def cost_groups(g: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """A task's model rows (no baselines) split by the device their cost columns were measured on, so that no cost
    table compares timings, throughput or memory taken on different hardware: [(a line naming the device, rows)],
    one group per device, models whose seeds ran on several devices in a group of their own."""
    rows = g[~g["is_baseline"].astype(bool)] if "is_baseline" in g else g
    device = rows["device_name"].fillna("").astype(str) if "device_name" in rows else pd.Series("", index=rows.index)
    groups = []
    for name in sorted(device.unique(), key=lambda d: (" + " in d, d == "", d)):
        if " + " in name:
            line = (f"Seeds timed on several devices ({name}): their time, throughput and memory mix hardware and are "
                    f"comparable with no table here.")
        elif name:
            line = f"Measured on: {name}."
        else:
            line = "Measured on: not recorded (metrics.json of an older version)."
        groups.append((line, rows[device == name]))
    return groups


def fallback_note(g: pd.DataFrame, key: str, more: str = "") -> str:
    """A line under a task's table naming the models (not baselines) whose statistics fell back to seeds only, and
    why: † (no per-example scores of their own: ± and ≈ over seeds) or their ≈ only (the best model has none).
    ``key``: the primary metric; ``more``: a sentence the task type adds."""
    if "stats_note" not in g:
        return ""
    rows = g[g["stats_note"].fillna("").astype(str) != ""]
    if "is_baseline" in rows:
        rows = rows[~rows["is_baseline"].astype(bool)]
    if rows.empty:
        return ""
    names = "; ".join(f"{r['model']} ({'' if math.isnan(r[f'{key}_ci95_comb']) else '≈ only — '}"
                      f"{r['stats_note']})" for _, r in rows.iterrows())
    return f"Seed-only statistics (± Student's t over seeds, marked †; ≈ from Welch's t-test) for: {names}." + more


def untested_note(g: pd.DataFrame) -> str:
    """A line naming the models that could not be tested against the best (``tie_test`` "none"): neither ≈ nor a
    difference is claimed for them."""
    if "tie_test" not in g:
        return ""
    rows = g[g["tie_test"].fillna("").astype(str) == "none"]
    if rows.empty:
        return ""
    return (f"No test against the best model was possible for: {', '.join(rows['model'].astype(str))} (fewer than 2 "
            f"test examples, every score identical, or a single seed where only seed scores exist): neither ≈ nor "
            f"a difference is claimed.")


def table_notes(g: pd.DataFrame, key: str, more: str = "") -> str:
    """What a task type prints under a task's table: :func:`fallback_note`, :func:`untested_note` and, with tuning,
    which models were tuned (budget, chosen values) and which hand-set (finebench.tuning.note)."""
    return " ".join(filter(None, (fallback_note(g, key, more), untested_note(g), tuning.note(g))))


class Tables:
    """A task type's tables: declarations, hooks with defaults, and the common renderer (see the module)."""

    BOARD_COLUMNS: ClassVar[list[str]]
    FAMILY_COLUMNS: ClassVar[list[str]]
    INTEGER_RANK: ClassVar[bool] = True  # every row is ranked: whole-number ranks in its board CSV
    REFERENCE_COLUMNS: ClassVar[list[str]] = []  # its entries' keys in config/references.yaml
    OPTIONAL_REFERENCE_COLUMNS: ClassVar[tuple[str, ...]] = ()
    leads: ClassVar[bool] = False  # its sections open the shared files (classification's: the files' titles)
    titles: ClassVar[dict[str, str]]  # {"leaderboard" | "costs" | "families": the section's title}
    intros: ClassVar[dict[str, str]]  # {"leaderboard" | "costs" | "families": the paragraph under the title}
    show_std: ClassVar[bool] = False  # the leaderboard shows the primary metric's sample std over seeds
    family_modality: ClassVar[bool] = False  # the families table shows the modality
    family_headers: ClassVar[tuple[str, str]]  # (the best model's metric, the family mean)
    cost_sort: ClassVar[str] = "params"  # the board column the cost tables are sorted by (missing last)

    def __init__(self, task_type: TaskType):
        self.task_type = task_type
        self.metric = task_type.primary
        self.key = self.metric.name

    # -- what the builder asks (finebench.report) -------------------------------------------------------------------

    def board_fields(self, g: pd.DataFrame) -> dict:
        """The leaderboard fields of one (task, model)'s runs besides the metrics' statistics (finebench.report)."""
        raise NotImplementedError

    def family_fields(self, best: pd.Series, g: pd.DataFrame) -> dict:
        """A family's fields besides its best model's metrics: from its best model's row and its models' rows."""
        return {}

    def expand(self, runs: pd.DataFrame) -> pd.DataFrame:
        """The rows the tables rank: one per run, unless a run is scored several ways (more rows)."""
        return runs

    def baseline_rows(self, runs: pd.DataFrame) -> list[dict]:
        """Rows of the board that are not models (ranked with no one)."""
        return []

    def plotted_as(self, name: str, runs: pd.DataFrame) -> str | None:
        """The task whose plots show table task ``name`` (None: none)."""
        return name

    def example_scores(self, runs: pd.DataFrame) -> dict:
        """{(task, model, seed): the primary metric's per-example test values, in the prepared test order, whose
        mean is the run's metric}; a run missing from it falls back to the seed-only statistics."""
        return {}

    def extra_frames(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, refs: pd.DataFrame) -> dict:
        """Its CSVs besides the board and families ({file name: frame}); ``fam`` carries ``family_rank``."""
        return {}

    def own_sections(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, frames: dict,
                     refs: pd.DataFrame) -> dict[str, str]:
        """Its parts of the shared files the renderer does not write (ranks.md, references.md)."""
        return {}

    def plots(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, out: Path) -> list[Path]:
        raise NotImplementedError

    def empty(self) -> tuple[dict, dict]:
        """No task of this type ran: its CSVs with headers only, and nothing in the shared files."""
        return ({self.task_type.table_files[0]: pd.DataFrame(columns=self.BOARD_COLUMNS),
                 self.task_type.table_files[1]: pd.DataFrame(columns=self.FAMILY_COLUMNS)}, {})

    def sections(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, frames: dict,
                 refs: pd.DataFrame) -> dict[str, str]:
        """Its part of each shared Markdown / HTML file."""
        return {"leaderboard.md": self.leaderboard_markdown(board, runs, fam),
                "leaderboard.html": self.leaderboard_html(board, runs, fam),
                "costs.md": self.costs_markdown(board), "families.md": self.families_markdown(fam),
                **self.own_sections(runs, board, fam, frames, refs)}

    # -- what a task's table says besides its rows ------------------------------------------------------------------

    def heading(self, g: pd.DataFrame) -> str:
        """A task's heading (its board rows ``g``)."""
        raise NotImplementedError

    def cost_heading(self, g: pd.DataFrame) -> str:
        return self.heading(g)

    def notes(self, g: pd.DataFrame) -> list[str]:
        """The paragraphs under a task's leaderboard (Markdown): by default which statistics fell back to seeds,
        which models were not tested, and the tuning."""
        return [table_notes(g, self.key, self.fallback_hint)]

    fallback_hint: ClassVar[str] = ""  # a sentence after the seed-only note (how to get per-example scores)

    def extras_markdown(self, task: str, runs: pd.DataFrame, fam: pd.DataFrame) -> list[str]:
        """Lines after a task's notes in leaderboard.md."""
        return []

    def extras_html(self, task: str, runs: pd.DataFrame, fam: pd.DataFrame) -> list[str]:
        """HTML after a task's notes in leaderboard.html."""
        return []

    # -- columns --------------------------------------------------------------------------------------------------

    @property
    def secondary(self) -> list[Metric]:
        return [m for m in self.task_type.metrics if not m.primary]

    def primary_column(self, header: str, bold: Callable[[str], str] | None = None) -> Column:
        """The primary metric's interval cell (marked best / ≈ when ``bold`` is given)."""
        m, k = self.metric, self.key

        def cell(r):
            text = interval_cell(m, r[f"{k}_mean"], r.get(f"{k}_ci95_comb"), r.get(f"{k}_ci95"), int(r["n_seeds"]))
            return mark(text, r, bold) if bold else text

        return Column(header, cell, cell)

    def secondary_column(self, m: Metric) -> Column:
        if m.interval:
            def cell(r):
                return seed_cell(m, r[f"{m.name}_mean"], r.get(f"{m.name}_ci95"), int(r["n_seeds"]))
        else:
            def cell(r):
                return show(m, r[f"{m.name}_mean"])
        return Column(m.label, cell, cell)

    def leaderboard_columns(self, bold: Callable[[str], str]) -> list[Column]:
        """#, model, family, arch, seeds, the primary metric (± seeds and test combined, bold / ≈), ± seeds, ± test,
        [std], each secondary metric, then the type's ``board_columns``."""
        m, k = self.metric, self.key

        def half(name: str) -> Column:  # a half-width in the metric's units
            return Column(f"± {name}", lambda r: show(m, r[f"{k}_ci95{'' if name == 'seeds' else '_test'}"]))

        return [Column("#", lambda r: f"{r['rank']:.0f}"), field_column("model"), field_column("family"),
                Column("arch", lambda r: r["arch"] or DASH, lambda r: r["arch"] or DASH),
                Column("seeds", lambda r: r["n_seeds"]), self.primary_column(m.label, bold),
                half("seeds"), half("test"),
                *([Column("std", lambda r: show(m, r[f"{k}_std"]))] if self.show_std else []),
                *(self.secondary_column(s) for s in self.secondary), *self.board_columns()]

    def board_columns(self) -> list[Column]:
        """The type's own leaderboard columns after the metrics (params, cost, a baseline's gain …)."""
        return [params_column()]

    def cost_columns(self) -> list[Column]:
        """The cost tables' columns after model, family and params (the last: the primary metric)."""
        return [self.primary_column(self.metric.label)]

    def family_columns(self) -> list[Column]:
        """The families table's columns between the best model's metric and the family mean."""
        return []

    # -- rendering ------------------------------------------------------------------------------------------------

    def rows(self, g: pd.DataFrame, columns: list[Column]) -> list[list]:
        return [[(c.baseline(r) if c.baseline else DASH) if is_baseline(r) else c.cell(r) for c in columns]
                for _, r in g.iterrows()]

    def opening(self, name: str) -> list[str]:
        """The lines opening its section of a shared Markdown file: a section after another type's starts with a
        blank line."""
        return [*([] if self.leads else [""]), f"# {self.titles[name]}", "", self.intros[name], ""]

    def leaderboard_markdown(self, board: pd.DataFrame, runs: pd.DataFrame | None = None,
                             fam: pd.DataFrame | None = None) -> str:
        columns = self.leaderboard_columns(lambda t: f"**{t}**")
        parts = self.opening("leaderboard")
        for task, g in board.groupby("task", sort=False):
            parts += [f"## {self.heading(g)}", "", tabulate_rows(self.rows(g, columns), [c.header for c in columns]),
                      ""]
            for note in self.notes(g):
                parts += [note, ""] if note else []
            if runs is not None and fam is not None:
                parts += self.extras_markdown(str(task), runs, fam)
        return "\n".join(parts)

    def leaderboard_html(self, board: pd.DataFrame, runs: pd.DataFrame | None = None,
                         fam: pd.DataFrame | None = None) -> str:
        columns = self.leaderboard_columns(lambda t: t)
        at = columns.index(next(c for c in columns if c.header == self.metric.label))
        parts = ["<!doctype html><meta charset='utf-8'><title>finebench leaderboard</title>",
                 "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
                 "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style>"] if self.leads else []
        parts += [f"<h1>{self.titles['leaderboard']}</h1>", html_paragraph(self.intros["leaderboard"])]
        for task, g in board.groupby("task", sort=False):
            rows = [[html.escape(str(c)) for c in row] for row in self.rows(g, columns)]
            for row, (_, r) in zip(rows, g.iterrows()):
                if r["is_best"]:
                    row[at] = f"<b>{row[at]}</b>"
            parts += [f"<h2>{html.escape(self.heading(g))}</h2>",
                      tabulate_rows(rows, [c.header for c in columns], "unsafehtml"),
                      *(html_paragraph(note) for note in self.notes(g))]
            parts.append("<h3>Cost</h3>")
            for device, d in cost_groups(g):
                parts += [html_paragraph(device), self.cost_table(d, "unsafehtml")]
            if runs is not None and fam is not None:
                parts += self.extras_html(str(task), runs, fam)
        return "\n".join(parts) + "\n"

    def cost_table(self, d: pd.DataFrame, fmt: str = "github") -> str:
        columns = [field_column("model"), field_column("family"), params_column(), *self.cost_columns()]
        rows = self.rows(d.sort_values(self.cost_sort, na_position="last"), columns)
        if fmt == "unsafehtml":
            rows = [[html.escape(str(c)) for c in row] for row in rows]
        return tabulate_rows(rows, [c.header for c in columns], fmt)

    def costs_markdown(self, board: pd.DataFrame) -> str:
        parts = self.opening("costs")
        for _, g in models_of(board).groupby("task", sort=False):
            parts += [f"## {self.cost_heading(g)}", ""]
            for device, d in cost_groups(g):  # one table per device the costs were measured on
                parts += [device, "", self.cost_table(d), ""]
        return "\n".join(parts)

    def families_markdown(self, fam: pd.DataFrame) -> str:
        k = self.key
        best, mean = self.family_headers
        columns = [field_column("task"), *([field_column("modality")] if self.family_modality else []),
                   field_column("family"), Column("best model", lambda r: r["best_model"]),
                   Column(best, lambda r: interval_cell(self.metric, r[f"best_{k}_mean"], r[f"best_{k}_ci95_comb"],
                                                        r[f"best_{k}_ci95"], int(r["best_n_seeds"]))),
                   *self.family_columns(), Column(mean, lambda r: show(self.metric, r[f"family_mean_{k}"])),
                   Column("models", lambda r: r["n_models"]),
                   Column("vs task best", lambda r: "✓" if r["best_is_task_best"]
                          else ("≈" if r["best_tie_with_task_best"] else ""))]
        return "\n".join([*self.opening("families"), tabulate_rows(self.rows(fam, columns),
                                                                   [c.header for c in columns]), ""])


def field_column(name: str) -> Column:
    """A board field as it is, for models and baselines alike."""
    return Column(name, lambda r: r[name], lambda r: r[name])


def params_column() -> Column:
    return Column("params", lambda r: human(r["params"]), lambda r: human(r["params"]))


def num_column(header: str, name: str, fmt: str) -> Column:
    """A board column as ``fmt`` ("—" where there is none); baselines: "—"."""
    return Column(header, lambda r: DASH if missing(r[name]) else format(r[name], fmt))


def human_column(header: str, name: str) -> Column:
    """A count (parameters, FLOPs) as 1.23M; baselines: "—"."""
    return Column(header, lambda r: human(r[name]))


def train_seconds_column() -> Column:
    """The mean training time per run."""
    return Column("train s", lambda r: f"{r['train_seconds_mean']:.1f}")


# The board columns every type's BOARD_COLUMNS holds: the metrics' statistics (finebench.report) after its identity
# columns, the tests against the task's best at the end (then ``is_baseline`` where it has baseline rows).
TEST_COLUMNS = ["rank", "is_best", "p_vs_best", "tie_test", "tie_with_best", "p_vs_best_welch", "stats_note"]


def stat_columns(task_type: TaskType) -> list[str]:
    """The primary metric's statistics over seeds and test examples, then each secondary metric's mean (and 95 % CI
    over seeds where it declares ``interval``)."""
    k = task_type.primary.name
    return [f"{k}_mean", f"{k}_std", f"{k}_ci95", f"{k}_ci95_test", f"{k}_ci95_comb", f"{k}_min", f"{k}_max",
            *(c for m in task_type.metrics if not m.primary
              for c in (f"{m.name}_mean", *([f"{m.name}_ci95"] if m.interval else [])))]
