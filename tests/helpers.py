"""Helpers for comparing warehouse contents across runs."""

import hashlib
from pathlib import Path

import duckdb


def file_sha(path: Path) -> str | None:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if Path(path).exists() else None


def table_contents(path: Path) -> dict[str, list]:
    """Every table's rows, sorted, so two snapshots compare equal iff the contents are equal."""
    out = {}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1").fetchall()
        for (t,) in tables:
            rows = con.execute(f"SELECT * FROM {t}").fetchall()
            out[t] = sorted(rows, key=repr)
    return out


def row_counts(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1").fetchall()
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for (t,) in tables}


def chart_specs(page: str) -> dict[str, dict]:
    """The Vega-Lite spec of every chart in a report page, by chart id (e.g. 'whatif')."""
    import json
    import re

    out = {}
    for m in re.finditer(r'vegaEmbed\("#chart-([\w-]+)", ', page):
        out[m.group(1)], _ = json.JSONDecoder().raw_decode(page, m.end())
    return out


def chart_rows(spec: dict) -> list[dict]:
    """Every data row embedded in a chart spec (all its named datasets)."""
    return [r for rows in spec.get("datasets", {}).values() for r in rows]
