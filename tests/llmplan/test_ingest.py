"""Reading and checking input files: every shipped file, and each class of bad input."""

import csv
from pathlib import Path

import polars as pl
import pytest

from llmplan.errors import InputError
from llmplan.ingest import files_of, read_all
from llmplan.schemas import ALL_KINDS
from tests.conftest import DATA


def _records(path: Path) -> int:
    with open(path, encoding="utf-8", newline="") as fh:
        return sum(1 for row in csv.reader(fh)) - 1


def test_every_shipped_file_is_read_with_every_row():
    data = read_all(DATA)
    for kind in ALL_KINDS:
        files = files_of(kind, DATA)
        assert files, f"no shipped file for {kind.name}"
        kd = data[kind.name]
        assert kd.raw.height == sum(_records(f) for f in files), kind.name
        assert set(kd.files) == {str(f) for f in files}
        assert kd.raw["source_line"].min() == 2
        assert kd.raw["file_sha256"].str.len_chars().unique().to_list() == [64]


def test_source_lines_follow_multiline_quoted_fields():
    """Epoch's CSV has fields spanning lines: source_line must be the record's first line."""
    data = read_all(DATA)
    ep = data["epoch"].raw
    path = data["epoch"].files
    text = Path(next(iter(path))).read_text(encoding="utf-8").splitlines()
    row = ep.filter(pl.col("model") == "Llama 2-70B").row(0, named=True)
    assert text[row["source_line"] - 1].startswith("Llama 2-70B,")


def _break(data_copy: Path, rel: str, transform) -> Path:
    p = data_copy / rel
    p.write_bytes(transform(p.read_bytes()))
    return p


CURATED = "training_runs/training_runs_through_2023.csv"


@pytest.mark.parametrize(
    "name, rel, transform, line, column, expect",
    [
        ("missing column", CURATED, lambda b: b.replace(b",tokens_b,", b",tokenz_b,", 1), 1, "tokens_b", "missing column"),
        ("non-numeric", CURATED, lambda b: b.replace(b"Llama 2 13B,Meta,2023,13,", b"Llama 2 13B,Meta,2023,thirteen,", 1), 3, "params_b", "expected a number, got 'thirteen'"),
        ("negative", CURATED, lambda b: b.replace(b"Llama 2 13B,Meta,2023,13,", b"Llama 2 13B,Meta,2023,-13,", 1), 3, "params_b", "expected a positive number"),
        ("zero", CURATED, lambda b: b.replace(b",A100-80GB,,184320,", b",A100-80GB,,0,", 1), 2, "gpu_hours", "expected a positive number"),
        ("unknown accelerator", CURATED, lambda b: b.replace(b"Llama 2 13B,Meta,2023,13,,2000,A100-80GB", b"Llama 2 13B,Meta,2023,13,,2000,Z9000", 1), 3, "gpu_type", "unknown accelerator 'Z9000'"),
        ("duplicate key", CURATED, lambda b: b.replace(b"Llama 2 13B,", b"Llama 2 7B,", 1), 3, "model", "duplicate run key 'Llama 2 7B'"),
        ("bad utf-8", CURATED, lambda b: b.replace(b"Llama 2 13B", b"Llama 2 \xff13B", 1), 3, "byte 9", "invalid UTF-8"),
        ("empty file", CURATED, lambda b: b"", 1, None, "file is empty"),
        ("unknown pipeline schedule", CURATED, lambda b: b.replace(b",1,1f1b,\"bigscience", b",1,gpipe,\"bigscience", 1), 20, "pp_schedule",
         "expected one of"),
        ("bad throughput value", "throughput/mpt_throughput_llm_foundry.csv", lambda b: b.replace(b",41.25,", b",abc,", 1), 2, "MFU", "expected a number"),
    ],
)
def test_bad_input_names_file_line_column(data_copy, name, rel, transform, line, column, expect):
    path = _break(data_copy, rel, transform)
    with pytest.raises(InputError) as exc:
        read_all(data_copy)
    problems = exc.value.problems
    hit = [p for p in problems if p.file == str(path) and p.line == line and p.column == column and expect in p.message]
    assert hit, f"{name}: expected {path}:{line}:{column} '{expect}', got {[str(p) for p in problems]}"
    assert str(path) in str(exc.value) and f"line {line}" in str(exc.value)


def test_epoch_missing_fields_are_not_errors(data_copy):
    """Epoch rows with empty fields load; the adapter excludes them from fits with a reason."""
    p = data_copy / "epoch" / "epoch_notable_models_before_2024.csv"
    text = p.read_text(encoding="utf-8")
    assert ",NVIDIA A100 SXM4 80 GB,1000," in text
    data = read_all(data_copy)
    assert data["epoch"].raw.height > 700


def test_a_newer_epoch_download_with_extra_columns_loads(data_copy):
    p = data_copy / "epoch" / "epoch_notable_models_before_2024.csv"
    rows = list(csv.reader(p.open(encoding="utf-8", newline="")))
    rows[0].append("Some new Epoch column")
    for r in rows[1:]:
        r.append("x")
    with p.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    assert read_all(data_copy)["epoch"].raw.height == len(rows) - 1
