"""Markdown tables for reports, registry descriptions and pull-request comments."""

from __future__ import annotations

from typing import Any

import pandas as pd


def table(rows: pd.DataFrame | list[dict[str, Any]]) -> str:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if frame.empty:
        return ""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
