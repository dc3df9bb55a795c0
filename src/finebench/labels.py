"""How a task is named wherever its results are shown: table headings, plot titles.

Its own module so that both :mod:`finebench.report` and :mod:`finebench.plots` import it at module level without
importing each other.
"""

from __future__ import annotations


def task_label(first) -> str:
    """The task's name, with the data's caveat (the dataset source's ``data_note``, e.g. synthesized speech)."""
    note = first.get("data_note") if hasattr(first, "get") else None
    return f"{first['task']} [{note}]" if isinstance(note, str) and note else str(first["task"])
