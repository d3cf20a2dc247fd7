"""Read input CSVs exactly as written, keep where every row came from, and check them.

Why hand-parse with the csv module instead of polars.read_csv: every problem must name the
file *line* (a quoted field may span lines, as in Epoch's CSV) and bad UTF-8 must be located
to the byte. Typing and value checks are then declared in llmplan/schemas.py (pandera).
"""

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandera.polars as pa
import polars as pl

from llmplan.errors import InputError, Problem
from llmplan.schemas import ALL_KINDS, Kind

PROVENANCE = ("source_file", "source_line", "file_sha256", "loaded_at")


@dataclass
class KindData:
    kind: Kind
    raw: pl.DataFrame          # text as read + provenance (one frame for all files of the kind)
    typed: pl.DataFrame        # typed columns + source_file, source_line
    files: dict[str, str]      # path -> sha256


def _header(path: Path) -> str:
    with open(path, "rb") as fh:
        return fh.readline().decode("utf-8-sig", errors="replace")


def files_of(kind: Kind, data_dir: Path) -> list[Path]:
    """The kind's CSVs. Two formats share data/throughput/: a file goes to the kind whose header
    marker it has (llmplan's per-step format names tokens_per_s_per_gpu; MosaicML's does not)."""
    if "files" in kind.extra:
        return [data_dir / f for f in kind.extra["files"] if (data_dir / f).exists()]
    files = sorted((data_dir / kind.folder).glob("*.csv"))
    files = [f for f in files if f.name not in kind.extra.get("exclude", ())]
    if "header_has" in kind.extra:
        files = [f for f in files if kind.extra["header_has"] in _header(f)]
    if "header_lacks" in kind.extra:
        files = [f for f in files if kind.extra["header_lacks"] not in _header(f)]
    return files


def _decode(path: Path, data: bytes, problems: list[Problem]) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        problems.append(Problem(str(path), line, f"byte {col}",
                                f"invalid UTF-8 (byte 0x{data[e.start]:02x}); expected a UTF-8 encoded CSV"))
        return None


def read_file(kind: Kind, path: Path, loaded_at: datetime, problems: list[Problem]) -> tuple[pl.DataFrame, pl.DataFrame, str] | None:
    """One CSV → (raw text frame, typed frame, sha256), or None with problems appended."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    expected = ", ".join(c.header for c in kind.columns if c.required)
    if not data.strip():
        problems.append(Problem(str(path), 1, None, f"file is empty; expected a header line with: {expected}"))
        return None
    text = _decode(path, data, problems)
    if text is None:
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as e:
        problems.append(Problem(str(path), 1, None, f"cannot parse the header: {e}"))
        return None
    header = [h.strip() for h in header]
    index = {h: i for i, h in enumerate(header)}
    missing = [c.header for c in kind.columns if c.required and c.header not in index]
    if missing:
        for m in missing:
            problems.append(Problem(str(path), 1, m, f"missing column; expected the header to contain: {expected}"))
        return None
    cols: dict[str, list] = {c.name: [] for c in kind.columns}
    lines: list[int] = []
    prev = reader.line_num
    try:
        for row in reader:
            start = prev + 1
            prev = reader.line_num
            if not row or all(not v.strip() for v in row):
                continue
            if len(row) != len(header):
                problems.append(Problem(str(path), start, None,
                                        f"expected {len(header)} fields as in the header, found {len(row)}"))
                continue
            lines.append(start)
            for c in kind.columns:
                i = index.get(c.header)
                cols[c.name].append(row[i] if i is not None else None)
    except csv.Error as e:
        problems.append(Problem(str(path), reader.line_num, None, f"malformed CSV: {e}"))
        return None
    if not lines:
        problems.append(Problem(str(path), 2, None, "no data rows after the header; expected at least one row"))
        return None
    raw = pl.DataFrame({k: pl.Series(k, v, dtype=pl.Utf8) for k, v in cols.items()}).with_columns(
        pl.lit(str(path)).alias("source_file"),
        pl.Series("source_line", lines, dtype=pl.Int32),
        pl.lit(sha).alias("file_sha256"),
        pl.lit(loaded_at).alias("loaded_at"),
    )
    typed = _type(kind, path, raw, problems)
    return raw, typed, sha


def _type(kind: Kind, path: Path, raw: pl.DataFrame, problems: list[Problem]) -> pl.DataFrame:
    """Cast text to the declared types, then run the declared checks (pandera)."""
    exprs = []
    for c in kind.columns:
        s = pl.col(c.name).str.strip_chars()
        s = pl.when(s == "").then(None).otherwise(s)
        if c.dtype is pl.Utf8:
            exprs.append(s.alias(c.name))
        elif c.dtype is pl.Int64:
            exprs.append(s.cast(pl.Float64, strict=False).alias(c.name))
        else:
            exprs.append(s.cast(c.dtype, strict=False).alias(c.name))
    typed = raw.select(*exprs, "source_file", "source_line")
    headers = {c.name: c.header for c in kind.columns}
    unreadable = set()          # (line, column) already named as not a number: its null is not "empty"
    for c in kind.columns:
        if c.dtype is pl.Utf8:
            continue
        text = raw[c.name].str.strip_chars()
        bad = typed.with_columns(text.alias("_t")).filter(pl.col("_t").is_not_null() & (pl.col("_t") != "") & pl.col(c.name).is_null())
        kind_word = "an integer" if c.dtype is pl.Int64 else "a number"
        for r in bad.select("source_line", "_t").iter_rows():
            unreadable.add((r[0], c.header))
            problems.append(Problem(str(path), r[0], c.header, f"expected {kind_word}, got {r[1]!r}"))
        if c.dtype is pl.Int64:
            frac = typed.filter(pl.col(c.name).is_not_null() & (pl.col(c.name) != pl.col(c.name).round(0)))
            for r in frac.select("source_line", c.name).iter_rows():
                problems.append(Problem(str(path), r[0], c.header, f"expected an integer, got {r[1]!r}"))
    typed = typed.with_columns(
        [pl.col(c.name).cast(pl.Int64, strict=False) for c in kind.columns if c.dtype is pl.Int64]
    )
    try:
        kind.schema().validate(typed, lazy=True)
    except pa.errors.SchemaErrors as e:
        fc = e.failure_cases
        for r in fc.iter_rows(named=True):
            idx = r.get("index")
            line = int(typed["source_line"][idx]) if idx is not None else None
            col = headers.get(r["column"], r["column"])
            if (line, col) in unreadable:
                continue
            problems.append(Problem(str(path), line, col, _explain(r["check"], r["failure_case"])))
    return typed


def _explain(check: str, value) -> str:
    if check == "not_nullable":
        return "a value is required here; the field is empty"
    if check.startswith("greater_than("):
        return f"expected a positive number (> {check[13:-1]}), got {value}"
    if check.startswith("greater_than_or_equal_to("):
        return f"expected a number ≥ {check[25:-1]}, got {value}"
    if check.startswith("isin("):
        return f"expected one of {check[5:-1]}, got {value!r}"
    if check.startswith("in_range("):
        return f"expected a value in range {check[9:-1]}, got {value}"
    if check == "field_uniqueness":
        return f"duplicate value {value!r}; expected each value once"
    return f"failed check {check}: {value}"


def read_kind(kind: Kind, data_dir: Path, loaded_at: datetime, problems: list[Problem]) -> KindData:
    raws, typeds, files = [], [], {}
    for path in files_of(kind, data_dir):
        got = read_file(kind, path, loaded_at, problems)
        if got is None:
            continue
        raw, typed, sha = got
        raws.append(raw)
        typeds.append(typed)
        files[str(path)] = sha
    raw = pl.concat(raws, how="vertical") if raws else pl.DataFrame()
    typed = pl.concat(typeds, how="vertical") if typeds else pl.DataFrame()
    if kind.key and typed.height:
        dup = typed.filter(pl.struct(list(kind.key)).is_duplicated()).sort("source_file", "source_line")
        seen: dict[tuple, tuple[str, int]] = {}
        for r in dup.iter_rows(named=True):
            k = tuple(r[c] for c in kind.key)
            if k in seen:
                f0, l0 = seen[k]
                header = next(c.header for c in kind.columns if c.name == kind.key[0])
                problems.append(Problem(r["source_file"], r["source_line"], header,
                                        f"duplicate run key {k[0]!r} (first at {f0}, line {l0}); expected each key once"))
            else:
                seen[k] = (r["source_file"], r["source_line"])
    return KindData(kind, raw, typed, files)


def read_all(data_dir: Path, loaded_at: datetime | None = None) -> dict[str, KindData]:
    """Read and check every input file. Raises InputError listing every problem found."""
    loaded_at = loaded_at or datetime.now(timezone.utc)
    problems: list[Problem] = []
    out = {k.name: read_kind(k, data_dir, loaded_at, problems) for k in ALL_KINDS}
    if not problems:
        from llmplan.accelerators import check_accelerator_names
        problems.extend(check_accelerator_names(out))
        from llmplan.shapes import check_step_rows
        problems.extend(check_step_rows(out))
    if problems:
        raise InputError(problems)
    return out


def read_one(kind: Kind, path: Path, consequence: str | None = None) -> pl.DataFrame:
    """One user-supplied CSV (predict, fit-scaling), typed and checked; raises InputError whose
    message ends with `consequence` when the caller would have written something."""
    path = Path(path)
    if not path.is_file():
        raise InputError([Problem(str(path), None, None, "no such file; expected a CSV with columns: "
                                  + ", ".join(c.header for c in kind.columns if c.required))], consequence=consequence)
    problems: list[Problem] = []
    got = read_file(kind, path, datetime.now(timezone.utc), problems)
    if problems or got is None:
        raise InputError(problems, consequence=consequence)
    return got[1]
