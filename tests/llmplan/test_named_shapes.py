"""A published shape by name (`llmplan plan --shape NAME`, a per-step CSV's `shape` column): the row of
data/throughput/model_shapes.csv it names, matched case- and punctuation-insensitively."""

import csv
from pathlib import Path

import polars as pl
import pytest

from llmplan.errors import LlmplanError
from llmplan.shapes import closest_shape_names, core_shapes, named_shape, with_named_shapes

CSV = Path(__file__).resolve().parents[2] / "data" / "throughput" / "model_shapes.csv"


@pytest.fixture(scope="module")
def shapes() -> pl.DataFrame:
    return core_shapes(pl.read_csv(CSV, infer_schema_length=0).with_columns(
        *[pl.col(c).cast(pl.Int64) for c in ("layers", "hidden", "ffn", "heads", "kv_heads", "head_dim", "vocab", "experts",
                                             "top_k", "moe_ffn", "shared_experts", "dense_layers", "q_lora_rank",
                                             "kv_lora_rank", "qk_rope_head_dim", "v_head_dim")]))


def _csv_row(model: str) -> dict:
    with CSV.open(encoding="utf-8") as fh:
        return next(r for r in csv.DictReader(fh) if r["model"] == model)


@pytest.mark.parametrize("name", ["DeepSeek-V3", "deepseek v3", "DEEPSEEK_V3", "DeepSeekV3"])
def test_deepseek_v3_by_any_spelling(shapes, name):
    row = _csv_row("DeepSeekV3")                 # the first row whose canonical name is DeepSeek-V3
    got = named_shape(name, shapes)
    for k in ("layers", "hidden", "ffn", "heads", "kv_heads", "head_dim", "vocab", "experts", "top_k", "moe_ffn",
              "shared_experts", "dense_layers", "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "v_head_dim"):
        assert got[k] == float(row[k]), k
    assert got["tied_embeddings"] == 0.0


def test_canonical_name_without_its_parenthesis(shapes):
    row = _csv_row("LLAMA4-Scout-LLM")           # canonical "Llama 4 Scout (text model)"
    got = named_shape("Llama 4 Scout", shapes)
    assert (got["layers"], got["hidden"], got["experts"], got["top_k"], got["moe_ffn"], got["vocab"]) == tuple(
        float(row[k]) for k in ("layers", "hidden", "experts", "top_k", "moe_ffn", "vocab"))
    assert "q_lora_rank" not in got                # MLA columns only where the row has them


def test_dense_and_ungated_rows_in_the_step_models_terms(shapes):
    # GPT-3 175B: experts 0 (dense) → 1 expert of top-1; its GELU MLP (2 matrices of 12288 × 49152) counts as a
    # SwiGLU one of 49152 · 2/3 = 32768 (3 matrices: the same parameters); tied embeddings → 1.
    row = _csv_row("GPT3-175B")
    got = named_shape("gpt-3 175b", shapes)
    assert got["ffn"] * 3 == float(row["ffn"]) * 2 and got["ffn"] == 32768
    assert (got["experts"], got["top_k"], got["tied_embeddings"]) == (1.0, 1.0, 1.0)


def test_unknown_name_is_one_sentence_with_the_closest_names(shapes):
    with pytest.raises(LlmplanError) as e:
        named_shape("DeepSek V3", shapes, "--shape")
    msg = str(e.value)
    assert msg.startswith("--shape 'DeepSek V3' is not a shape in data/throughput/model_shapes.csv")
    assert "DeepSeek" in msg and msg.count("\n") == 0
    assert "Qwen3-235B-A22B" in closest_shape_names("qwen3 235b", shapes)


def test_a_shape_column_fills_the_rows_own_empty_columns(shapes):
    frame = pl.DataFrame({"model": ["a", "b", "c"], "shape": ["Qwen3-235B-A22B", None, "Qwen3-235B-A22B"],
                          "layers": [None, 32, 48], "source_line": [2, 3, 4]},
                         schema_overrides={"layers": pl.Int64, "source_line": pl.Int32})
    out, problems = with_named_shapes(frame, shapes, "steps.csv")
    assert problems == []
    row = _csv_row("Qwen3_235B_a22B")
    assert out["layers"].to_list() == [float(row["layers"]), 32.0, 48.0]      # a row's own value wins
    assert out["experts"].to_list() == [float(row["experts"]), None, float(row["experts"])]
    assert out["moe_ffn"][0] == float(row["moe_ffn"])
    bad = frame.with_columns(pl.Series("shape", ["Qwen3-235B-A22B", "Nemotron 9000", None]))
    _, problems = with_named_shapes(bad, shapes, "steps.csv")
    assert len(problems) == 1
    text = str(problems[0])
    assert text.startswith("steps.csv, line 3, column 'shape': 'Nemotron 9000' is not a shape") and "Nemotron" in text
