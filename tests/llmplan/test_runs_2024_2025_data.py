"""The 2024-25 whole runs added for issues 19/20 (data/training_runs/training_runs_2024_2025.csv): derived
GPU-hours read back from each row's own columns, MoE shapes against the parameter counts the model cards
state, and every row naming its source and shape."""

import csv
import re

import pytest

from llmplan.perf.shapes import params_from_shape
from tests.conftest import DATA

RUNS = DATA / "training_runs/training_runs_2024_2025.csv"
SHAPES = DATA / "throughput/model_shapes.csv"

# Rows added by branch runs19 (the whole-run targets of issues 19 and 20 were judged on two MoE runs).
ADDED = ["Llama 4 Scout", "Llama 4 Maverick", "Phi-3.5-MoE", "GRIN MoE", "Phi-3-mini", "Phi-3.5-mini", "JetMoE-8B",
         "Nemotron-4 15B"]
SHAPE_COLUMNS = ("layers", "hidden", "ffn", "heads", "kv_heads", "head_dim", "vocab", "experts", "top_k", "moe_ffn",
                 "shared_experts", "dense_layers")


def _rows(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def runs():
    return {r["model"]: r for r in _rows(RUNS)}


@pytest.fixture(scope="module")
def shapes():
    return {r["model"]: r for r in _rows(SHAPES)}


def _shape(row: dict) -> dict:
    """A model_shapes.csv row as the numbers params_from_shape reads (an empty MoE column is 0)."""
    out = {k: float(row[k] or 0) for k in SHAPE_COLUMNS}
    out["tied_embeddings"] = 1.0 if row["tied_embeddings"] == "true" else 0.0
    out["attention"] = row["attention"]
    return out


DERIVED = re.compile(r"derived: gpu_hours = ([\d,]+) x ([\d.]+) d x 24 = ([\d,]+)")


def test_every_added_row_is_in_the_file(runs):
    assert set(ADDED) <= set(runs)


def test_derived_gpu_hours_are_count_times_days_times_24_from_the_rows_own_columns(runs):
    """A row whose notes say 'derived: gpu_hours = N x D d x 24 = H' carries N in gpu_count, D in wall_days
    and H in gpu_hours, and H = N · D · 24 (the cards print GPUs and days; the hours are ours)."""
    checked = []
    for model, r in runs.items():
        m = DERIVED.search(r["notes"])
        if not m:
            continue
        count, days, hours = float(m[1].replace(",", "")), float(m[2]), float(m[3].replace(",", ""))
        assert (float(r["gpu_count"]), float(r["wall_days"]), float(r["gpu_hours"])) == (count, days, hours), model
        assert float(r["gpu_hours"]) == float(r["gpu_count"]) * float(r["wall_days"]) * 24, model
        checked.append(model)
    # every added row with a GPU count and wall days is one of them (Nemotron-4 15B sums stages: next test)
    with_days = {m for m in ADDED if runs[m]["gpu_count"] and runs[m]["wall_days"]} - {"Nemotron-4 15B"}
    assert with_days == {"Phi-3.5-MoE", "GRIN MoE", "Phi-3-mini", "Phi-3.5-mini", "JetMoE-8B"}
    assert with_days <= set(checked)


def test_card_figures_of_the_derived_rows():
    """The GPUs and days the cards print (read by hand from each row's cited source)."""
    runs = {r["model"]: r for r in _rows(RUNS)}
    cards = {"Phi-3.5-MoE": (512, 23, 4900), "GRIN MoE": (512, 18, 4000), "Phi-3-mini": (512, 7, 3300),
             "Phi-3.5-mini": (512, 10, 3400), "JetMoE-8B": (96, 14, 1250)}
    for model, (gpus, days, tokens_b) in cards.items():
        r = runs[model]
        assert (float(r["gpu_count"]), float(r["wall_days"]), float(r["tokens_b"])) == (gpus, days, tokens_b), model
        assert float(r["gpu_hours"]) == gpus * days * 24


def test_nemotron_4_15b_hours_are_the_sum_of_its_batch_ramp_stages(runs):
    """Nemotron-4 15B report (arXiv 2402.16819) Table 2: 768 GPUs for 0.8 days, 1,536 for 0.4, 2,304 for 11.9
    (200B + 200B + 7,600B tokens); the report's 'approximately 13 calendar days'."""
    r = runs["Nemotron-4 15B"]
    stages = [(768, 0.8, 200), (1536, 0.4, 200), (2304, 11.9, 7600)]
    assert float(r["gpu_hours"]) == pytest.approx(sum(g * d * 24 for g, d, _ in stages), abs=0.5)
    assert float(r["wall_days"]) == pytest.approx(sum(d for _, d, _ in stages))
    assert float(r["tokens_b"]) == sum(t for *_, t in stages)
    assert float(r["gpu_count"]) == stages[-1][0]
    assert float(r["global_batch_tokens"]) == 1152 * 4096           # Table 2's last batch × Table 1's sequence


# Total and active parameters as the model cards state them (billions). The Phi MoE cards print no total
# ("16x3.8B" is experts × a dense Phi-3-mini, which double-counts the shared attention and embeddings), so
# only their 6.6B active is a stated count; their params_b (41.9) is the shape's, checked for consistency.
STATED = {"Llama 4 Scout": (109, 17), "Llama 4 Maverick": (400, 17), "Phi-3.5-MoE": (None, 6.6), "GRIN MoE": (None, 6.6)}


@pytest.mark.parametrize("model", sorted(STATED))
def test_moe_shapes_reproduce_the_stated_total_and_active_parameters(runs, shapes, model):
    """Within 5 %: Scout's 109B includes its vision encoder (the text model counts 107.8B); Meta's
    '17B activated', Microsoft's '6.6B active parameters when using 2 experts'."""
    r = runs[model]
    stated_total, stated_active = STATED[model]
    assert float(r["active_params_b"]) == stated_active
    s = _shape(shapes[r["shape_model"]])
    assert s["experts"] > 1
    total, active = (float(x) / 1e9 for x in params_from_shape(s))
    assert abs(active / stated_active - 1) <= 0.05, (model, active)
    assert abs(total / (stated_total or float(r["params_b"])) - 1) <= 0.05, (model, total)
    if stated_total:
        assert float(r["params_b"]) == stated_total


@pytest.mark.parametrize("model", ["Phi-3-mini", "Phi-3.5-mini"])
def test_dense_phi_shapes_reproduce_3_8b(runs, shapes, model):
    s = _shape(shapes[runs[model]["shape_model"]])
    total, active = (float(x) / 1e9 for x in params_from_shape(s))
    assert total == active and abs(total / 3.8 - 1) <= 0.05, total


def test_maverick_dense_layers_24_counts_as_the_interleaved_pattern(shapes):
    """NeMo's Llama4Experts128Config interleaves layers by moe_layer_freq = [0, 1] * 24 (dense, MoE, ...).
    Counting layer by layer over that pattern gives what 'dense_layers = 24' gives."""
    s = _shape(shapes["Llama 4 Maverick"])
    h, ffn, E, k, f, shared = s["hidden"], s["ffn"], s["experts"], s["top_k"], s["moe_ffn"], s["shared_experts"]
    attn = 2 * h * s["heads"] * s["head_dim"] + 2 * h * s["kv_heads"] * s["head_dim"]
    total = active = 2 * s["vocab"] * h
    for is_moe in [0, 1] * 24:
        if is_moe:
            total += attn + (E + shared) * 3 * h * f + h * E
            active += attn + (k + shared) * 3 * h * f + h * E
        else:
            total += attn + 3 * h * ffn
            active += attn + 3 * h * ffn
    got = params_from_shape(s)
    assert (float(got[0]), float(got[1])) == pytest.approx((total, active), rel=1e-12)


def test_added_rows_name_source_quality_and_a_shape_that_exists(runs, shapes):
    for model in ADDED:
        r = runs[model]
        assert re.match(r"\[(primary|secondary)\]", r["notes"]), model
        # repository@commit and path, a stored copy's id, or a paper with its arXiv number
        assert re.search(r"@[0-9a-f]{12}|read_file id \d+|arXiv \d{4}\.\d{5}", r["source"]), model
        assert r["precision"] == "", model                 # no added source states FP8 training
        if r["shape_model"]:
            assert r["shape_model"] in shapes, model
    assert runs["JetMoE-8B"]["shape_model"] == ""          # mixture-of-attention experts: no shape row expresses it
