"""raw → core: unit normalisation, accelerator names, the Epoch adapter and the merge."""

import polars as pl
import pytest

from llmplan.ingest import read_all
from llmplan.transform import build_core
from tests.conftest import DATA


@pytest.fixture(scope="module")
def core():
    return build_core(read_all(DATA))


def test_units_are_plain_counts(core):
    r = core["core.training_runs"].filter(pl.col("model") == "Llama 2 7B").row(0, named=True)
    assert r["params"] == 7e9 and r["tokens"] == 2e12 and r["gpu_hours"] == 184320
    assert r["training_flop"] == pytest.approx(6 * 7e9 * 2e12)
    assert r["utilization"] == pytest.approx(8.4e22 / (184320 * 3600 * 312e12))


def test_moe_run_on_h800_uses_active_parameters_and_the_h100_peak(core):
    """DeepSeek-V3 (data/training_runs/training_runs_2024_2025.csv): 37B active of 671B, 14.8T
    tokens, 2.664M H800 hours → 6·37e9·14.8e12 / (2.664e6 h · 3600 · 989e12) ≈ 34.6 %."""
    r = core["core.training_runs"].filter(pl.col("model") == "DeepSeek-V3").row(0, named=True)
    assert r["params"] == 671e9 and r["active_params"] == 37e9
    assert r["training_flop"] == pytest.approx(6 * 37e9 * 14.8e12)
    # H800: its own row (less NVLink), the H100's 989 TFLOP/s BF16 peak
    assert r["accelerator"] == "H800" and r["accelerator_flag"] == "export_variant"
    assert r["utilization"] == pytest.approx(0.3464, abs=5e-4)
    assert r["family"] == "deepseek@deepseek" and r["fit_exclusion_reason"] is None


def test_epoch_names_map_to_the_accelerator_table_with_flags(core):
    runs = core["core.training_runs"]
    ep = runs.filter(pl.col("origin") == "epoch")
    a100 = ep.filter(pl.col("accelerator_raw") == "NVIDIA A100 SXM4 80 GB")
    assert a100.height and set(a100["accelerator"]) == {"A100-80GB"}
    cur = runs.filter(pl.col("origin") == "curated")
    h800 = cur.filter(pl.col("accelerator_raw") == "H800").row(0, named=True)
    assert h800["accelerator"] == "H800" and h800["accelerator_flag"] == "export_variant"
    a800 = cur.filter(pl.col("accelerator_raw") == "A800-80GB").row(0, named=True)
    assert a800["accelerator"] == "A100-80GB" and a800["accelerator_flag"] == "export_variant"


def test_unmappable_epoch_hardware_is_reported_not_dropped(core):
    un = core["core.unmapped_accelerators"]
    assert "Huawei Ascend 910" in un["name"].to_list()
    runs = core["core.training_runs"]
    assert runs.filter(pl.col("accelerator_raw") == "Huawei Ascend 910")["fit_exclusion_reason"].to_list() == \
        ["hardware not in the accelerator table"]


def test_epoch_adapter_on_real_rows(core):
    """GPT-NeoX-20B: Epoch's size × epochs, read as tokens (its notes name no unit), and hours × chips.
    Black et al. 2022 (GPT-NeoX-20B, section 3): 150,000 steps × 1,538 contexts × 2,048 tokens
    = 472.4B tokens, within 2 % of Epoch's 341,173,367,965 × 1.4 = 477.6B. Read as words (× 4/3) it
    was 636.9B, 35 % too many."""
    runs = core["core.training_runs"]
    r = runs.filter(pl.col("model") == "GPT-NeoX-20B").row(0, named=True)
    assert r["origin"] == "epoch" and r["accelerator"] == "A100-40GB"
    assert r["gpu_hours"] == pytest.approx(2160 * 96)
    assert r["tokens_rule"] == "default:tokens"
    assert r["tokens"] == pytest.approx(150_000 * 1538 * 2048, rel=0.02)
    assert r["fit_exclusion_reason"] is None
    ft = runs.filter(pl.col("origin") == "epoch").filter(pl.col("fit_exclusion_reason") == "fine-tune of a base model")
    assert ft.height > 10


# Rows whose tokens were ≥ 1.25 × Epoch's own Training compute / (6 · Parameters) when every size
# was read as words (issue #11).
WERE_TOO_MANY = ["UL2", "AlphaCode", "XGLM-7.5B", "Megatron-Turing NLG 530B", "CPM-Large", "Megatron-LM (8.3B)"]


@pytest.mark.parametrize("model", WERE_TOO_MANY)
def test_epoch_tokens_agree_with_epochs_own_compute_column(core, model):
    """Epoch's compute column is an independent witness: C / (6·N) is the token count its
    compute implies. The tokens llmplan reads must lie within ×/÷ √(4/3) ≈ 1.155 of it."""
    raw = read_all(DATA)["epoch"].typed.filter(pl.col("model") == model).row(0, named=True)
    implied = raw["training_compute_flop"] / (6 * raw["parameters"])
    r = core["core.training_runs"].filter(pl.col("model") == model).row(0, named=True)
    assert r["tokens_rule"].endswith(":tokens")
    assert 1 / (4 / 3) ** 0.5 <= r["tokens"] / implied < (4 / 3) ** 0.5, (r["tokens"], implied)
    assert r["fit_exclusion_reason"] is None


def test_epoch_unit_rules_on_constructed_rows():
    """Each rule on a row built to trigger it: marker, notes, compute column (both units), default."""
    from llmplan.transform import epoch_tokens

    f = pl.DataFrame({
        "size": [3e11, 3e11, 3e11, 3e11, 3e11, 3e11],
        "epochs": [None, 2.0, None, None, None, None],
        "compute": [None, None, 6 * 1e9 * 3e11, 6 * 1e9 * 4e11, 6 * 1e9 * 1e13, None],
        "params": [1e9] * 6,
        "notes": ["[WORDS] 300B words of news", "1T tokens ~= 750B words", "", "", "about 300B words", None],
    })
    tokens, rule = epoch_tokens(pl.col("size"), pl.col("epochs"), pl.col("compute"), pl.col("params"), pl.col("notes"))
    out = f.select(tokens.alias("t"), rule.alias("r"))
    assert out["r"].to_list() == ["marker:words", "notes:tokens", "compute:tokens", "compute:words", "notes:words",
                                  "default:tokens"]
    assert out["t"].to_list() == pytest.approx([4e11, 6e11, 3e11, 4e11, 4e11, 3e11])


def test_a_family_is_one_teams_codebase(core):
    runs = core["core.training_runs"]
    fam = dict(zip(runs["model"], runs["family"]))
    assert fam["GPT-3 175B"] != fam["GPT-NeoX-20B"]                  # OpenAI ≠ EleutherAI
    assert fam["Pythia-1.4B"] == fam["GPT-NeoX-20B"]                 # both EleutherAI's gpt-neox library
    assert fam["Llama 2 7B"] == fam["LLaMA-65B"] == fam["Llama 3 8B"]
    assert fam["OPT-175B"] != fam["Llama 2 7B"]                      # Meta, but another team and codebase
    assert fam["Megatron-LM (8.3B)"] == fam["Megatron-Turing NLG 530B"]


def test_duplicates_prefer_the_curated_source_and_record_it(core):
    runs = core["core.training_runs"]
    assert runs.filter(pl.col("model").str.starts_with("Llama 2-70B")).height == 0
    note = runs.filter(pl.col("model") == "Llama 2 70B")["merge_note"][0]
    assert "Llama 2-70B" in note and "curated row kept (primary source)" in note
    assert runs["run_key"].is_unique().all()


def test_every_excluded_row_has_a_counted_reason(core):
    runs = core["core.training_runs"]
    reasons = runs.group_by("fit_exclusion_reason").len()
    assert reasons.filter(pl.col("fit_exclusion_reason").is_null())["len"][0] >= 40
    assert "missing training time or hardware quantity" in reasons["fit_exclusion_reason"].to_list()
    assert runs.filter(pl.col("fit_exclusion_reason").is_null() & pl.col("utilization").is_null()).height == 0


def test_throughput_rows_give_per_step_mfu_tokens_per_gpu_and_the_attention_term(core):
    from llmplan.flops import attention_flop_per_token

    tp = core["core.throughput"]
    r = tp.filter((pl.col("model") == "70b") & (pl.col("n_gpus") == 512) & (pl.col("seq_len") == 2048)).row(0, named=True)
    assert r["tokens_per_s_gpu"] == 1007 and r["mfu"] == pytest.approx(0.4125)
    assert r["mfu_6n"] == pytest.approx(1007 * 6 * 64862437376 / 989e12)
    # MosaicML's MFU includes attention: the implied term matches 12·L·s·d for MPT-70B (80 layers, d = 8192)
    assert r["attention_flop_per_token"] == pytest.approx(attention_flop_per_token(80, 8192, 2048), rel=0.1)
    assert tp.filter(pl.col("precision").str.contains("fp8"))["fit_exclusion_reason"].is_not_null().all()
