"""Plans: tokens by policy, the worked example, memory, data per language, sizes."""

from pathlib import Path

import duckdb
import polars as pl
import pytest

from llmplan import memory, pipeline
from llmplan.errors import LlmplanError
from llmplan.plan import build_plans, inverse_plan
from llmplan.scaling import BESIROGLU_2024
from llmplan.scenario import Scenario
from llmplan.units import fmt_bytes, fmt_count, fmt_days, fmt_sci, fmt_usd, parse_size


@pytest.mark.parametrize("text, value", [("125M", 125e6), ("10B", 1e10), ("1.5T", 1.5e12), ("7e9", 7e9), ("2.5e+10", 2.5e10), (" 10b ", 1e10), ("300", 300.0)])
def test_sizes(text, value):
    assert parse_size(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["10X", "ten", "", "-5B", "0", "1e400"])
def test_malformed_sizes_are_clear_errors(bad):
    with pytest.raises(LlmplanError, match="size|positive"):
        parse_size(bad)


def test_numbers_for_people():
    assert fmt_sci(1.2e22, "FLOP") == "1.2×10²² FLOP"
    assert fmt_count(26712.3, "GPU-hours") == "26,700 GPU-hours"
    assert fmt_days(15.23) == "15.2 days"
    assert fmt_usd(117250) == "$117k"
    assert fmt_bytes(8.12e11) == "812 GB"
    assert fmt_count(14.0) == "14" and fmt_count(1.5) == "1.5"       # counts show no empty decimals
    assert fmt_days(1 / 24) == "1 hour" and fmt_days(0.5) == "12 hours"


@pytest.fixture(scope="module")
def fitted(built_warehouse):
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        model, run_id = pipeline.load_model(con)
        acc = con.sql("SELECT * FROM core.accelerators").pl()
        bpt = con.execute("SELECT * FROM fits.bytes_per_token WHERE pipeline_run_id = ?", [run_id]).pl()
    return model, acc, bpt


def test_worked_example_10b_chinchilla_a100_vs_h100_on_20_gpus(fitted):
    """Rule of thumb: 10B × 200B tokens ≈ 1,000 A100 GPU-days, ≈ 300 H100 GPU-days, 20 H100s ≈ 15 days."""
    model, acc, bpt = fitted
    sc = Scenario(targets=["10B"], accelerators=["A100-80GB", "H100-80GB"], cluster_sizes=[20], policies=["chinchilla"],
                  mixture={"en": 1.0})
    plans, _ = build_plans(sc, model, acc.filter(pl.col("accelerator").is_in(["A100-80GB", "H100-80GB"])), BESIROGLU_2024, bpt)
    a100 = plans.filter(pl.col("accelerator") == "A100-80GB").row(0, named=True)
    h100 = plans.filter(pl.col("accelerator") == "H100-80GB").row(0, named=True)
    assert a100["tokens"] == pytest.approx(2e11) and a100["training_flop"] == pytest.approx(1.2e22)
    # llmplan's answer comes from the fitted whole-run utilisation, not 40 % MFU:
    assert 700 < a100["gpu_days_p50"] < 2500
    assert 1.5 < a100["gpu_days_p50"] / h100["gpu_days_p50"] < 4.0
    assert 10 < h100["wall_days_p50"] < 45
    assert h100["wall_days_p10"] < h100["wall_days_p50"] < h100["wall_days_p90"]
    assert h100["cost_usd_p50"] == pytest.approx(h100["gpu_hours_p50"] * 4.40)
    assert h100["fits_in_memory"] and h100["min_gpus_for_memory"] <= 20


def test_model_states_follow_deepspeeds_zero_estimators():
    """DeepSpeed's published estimators (no offload): ZeRO-2 gpu_mem = 2·N + 18·N/G
    (microsoft/DeepSpeed@022f2236, deepspeed/runtime/zero/stage_1_and_2.py,
    estimate_zero2_model_states_mem_needs: "2 = params_16bit, 18 = 2_grads_16bit + 4_grads_32bit +
    4_params_32bit + 8_optimizer_states_32bit"); ZeRO-3 gpu_mem = 4·largest_layer + 18·N/G
    (microsoft/DeepSpeed@0003660d, deepspeed/runtime/zero/stage3.py). Without the fp32 gradient
    partition: the ZeRO paper's 16Ψ (DDP), 4Ψ + 12Ψ/G, 2Ψ + 14Ψ/G, 16Ψ/G (Rajbhandari et al. 2020, Fig. 1)."""
    n, g, largest = 7e9, 8, 32000 * 4096
    rep, shard = memory.state_bytes(n, 2, fp32_grads=True)
    assert rep + shard / g == pytest.approx(2 * n + 18 * n / g)
    rep, shard = memory.state_bytes(n, 3, fp32_grads=True, largest_layer=largest)
    assert rep + shard / g == pytest.approx(4 * largest + 18 * n / g)
    for stage, expected in ((0, 16 * n), (1, 4 * n + 12 * n / g), (2, 2 * n + 14 * n / g), (3, 16 * n / g)):
        rep, shard = memory.state_bytes(n, stage, fp32_grads=False)
        assert rep + shard / g == pytest.approx(expected), stage


def test_activations_follow_korthikanti_table_2():
    """Korthikanti et al. 2022, Table 2, for GPT-3 175B (s = 2048, h = 12288, a = 96) at b = 1,
    t = 8, bytes per layer. 5·a·s/h = 5·96·2048/12288 = 80."""
    s, b, h, a, t = 2048, 1, 12288, 96, 8
    sbh = s * b * h                                                           # 25,165,824
    f = memory.activation_bytes_per_layer
    assert f(s, b, h, a, flash_attention=False) == pytest.approx(sbh * (34 + 80))              # no parallelism
    assert f(s, b, h, a, t, flash_attention=False) == pytest.approx(sbh * (10 + 24 / 8 + 80 / 8))   # tensor parallel
    assert f(s, b, h, a, t, sequence_parallel=True, flash_attention=False) == pytest.approx(sbh / 8 * (34 + 80))
    assert f(s, b, h, a, t, recompute="selective") == pytest.approx(sbh * (10 + 24 / 8))       # TP + selective
    assert f(s, b, h, a, t, sequence_parallel=True, recompute="selective") == pytest.approx(sbh * 34 / 8)
    assert f(s, b, h, a, recompute="full") == pytest.approx(sbh * 2)
    # FlashAttention does not store the scores: the same as selective recompute of attention.
    assert f(s, b, h, a) == pytest.approx(sbh * 34)


def test_memory_plan_units_flash_attention_and_logits():
    """GiB throughout: an 80 GB H100 has 80 · 2³⁰ = 85.9e9 bytes. With full recompute a 7B model
    keeps every layer's input 2·s·h, one layer's working
    set 34·s·h (+ 5·a·s·s without FlashAttention) and an fp32 logits buffer s·V·4."""
    s, v = 4096, 32000
    h, layers, heads = memory.shape_from_params(7e9)          # h = 4224 (a multiple of 64), 33 layers, 33 heads
    assert 12 * layers * h * h == pytest.approx(7e9, rel=0.05)
    act = memory.activation_bytes(7e9, s, 1, vocab=v)
    assert act == pytest.approx(layers * 2 * s * h + 34 * s * h + s * v * 4)
    no_flash = memory.activation_bytes(7e9, s, 1, vocab=v, flash_attention=False)
    assert no_flash - act == pytest.approx(5 * heads * s * s)
    per_gpu, need = memory.memory_plan([175e9, 125e6], [8, 8], [80 * 2**30] * 2, 3, 4096, 1)
    assert need[0] >= 18 * 175e9 / (0.9 * 80 * 2**30) and need[1] == 1
    assert memory.checkpoint_bytes(1e10) == pytest.approx(1.4e11)


def test_accelerator_memory_is_gib(fitted):
    _, acc, _ = fitted
    h100 = acc.filter(pl.col("accelerator") == "H100-80GB").row(0, named=True)
    assert h100["memory_bytes"] == 80 * 2**30 == pytest.approx(85.9e9, rel=1e-3)


def test_policies_and_data_per_language(fitted):
    model, acc, bpt = fitted
    sc = Scenario(targets=["1B", "70B"], accelerators=["H100-80GB"], cluster_sizes=[64, 1024],
                  policies=["chinchilla", "compute-optimal", "overtrain", "fixed", "inference-aware"],
                  mixture={"ja": 0.5, "en": 0.5}, unique_tokens={"ja": "50B"}, fixed_tokens="2T")
    plans, langs = build_plans(sc, model, acc.filter(pl.col("accelerator") == "H100-80GB"), BESIROGLU_2024, bpt)
    assert plans.height == 2 * 5 * 2
    tok = {(r["target_params"], r["policy"]): r["tokens"] for r in plans.iter_rows(named=True)}
    assert tok[(1e9, "chinchilla")] == pytest.approx(2e10)
    assert tok[(1e9, "overtrain")] == pytest.approx(1e11)
    assert tok[(1e9, "fixed")] == pytest.approx(2e12)
    ia = plans.filter((pl.col("policy") == "inference-aware") & (pl.col("target_params") == 7e10)).row(0, named=True)
    assert ia["params"] < 7e10 and ia["tokens"] > 20 * 7e10        # smaller model, more tokens
    ja = langs.filter((pl.col("language") == "ja") & (pl.col("target_params") == 7e10) & (pl.col("policy") == "chinchilla")).row(0, named=True)
    assert ja["tokens"] == pytest.approx(7e11) and ja["epochs"] == pytest.approx(14.0)
    assert ja["effective_tokens"] < ja["tokens"] and "epochs" in ja["warning"]
    assert ja["bytes_p10"] < ja["bytes_p50"] < ja["bytes_p90"]
    warn = plans.filter((pl.col("target_params") == 7e10) & (pl.col("policy") == "chinchilla"))["warnings"][0]
    assert "epochs" in warn


def test_inverse_plan_20_h100_for_15_days(fitted):
    model, acc, bpt = fitted
    h100 = acc.filter(pl.col("accelerator") == "H100-80GB")
    sc = Scenario(mixture={"ja": 0.5, "en": 0.5}, unique_tokens={"ja": "10B"})
    out = inverse_plan(model, h100, 20, BESIROGLU_2024, days=15, sc=sc, bpt=bpt)
    assert out["gpu_hours"] == 20 * 15 * 24 and out["limited_by"] == "days"
    assert out["compute_flop_p10"] < out["compute_flop_p50"] < out["compute_flop_p90"]
    assert 6 * out["params_opt_p50"] * out["tokens_opt_p50"] == pytest.approx(out["compute_flop_p50"])
    assert 1e9 < out["params_opt_p50"] < 5e10
    # loss has an interval: more compute → more tokens → lower loss
    assert out["predicted_loss_p10"] < out["predicted_loss_p50"] < out["predicted_loss_p90"]
    assert out["predicted_loss_p50"] == pytest.approx(BESIROGLU_2024.loss(out["params_opt_p50"], out["tokens_opt_p50"]))
    # the same checks as a forward plan: memory on 20 accelerators, epochs over 10B unique ja tokens
    assert out["fits_in_memory"] and out["memory_per_gpu_gib"] < 80
    assert out["max_epochs"] == pytest.approx(0.5 * out["tokens_opt_p50"] / 1e10, rel=1e-5)   # D passed as 6 significant digits
    assert "epochs over the unique 10B" in out["warnings"] or "epochs over the unique ja" in out["warnings"]


def test_inverse_plan_respects_both_days_and_budget(fitted):
    """20 H100 for 15 days at $4.40/h is 20·15·24·4.40 = $31,680; a $20,000 budget stops the run
    after 20000 / (4.40·20·24) = 9.47 days."""
    model, acc, _ = fitted
    h100 = acc.filter(pl.col("accelerator") == "H100-80GB")
    out = inverse_plan(model, h100, 20, BESIROGLU_2024, days=15, budget_usd=20000)
    assert out["limited_by"] == "budget" and out["cost_usd"] == pytest.approx(20000)
    assert out["days"] == pytest.approx(20000 / (4.40 * 20 * 24))
    roomy = inverse_plan(model, h100, 20, BESIROGLU_2024, days=15, budget_usd=1e6)
    assert roomy["limited_by"] == "days" and roomy["cost_usd"] == pytest.approx(31680)


@pytest.mark.parametrize("quantile", ["p50", "p90"])
def test_days_gives_the_fewest_accelerators_that_finish_in_time(fitted, quantile):
    """The answer n finishes within the deadline at the quantile and n − 1 does not."""
    from llmplan.plan import fewest_accelerators

    model, acc, bpt = fitted
    h100 = acc.filter(pl.col("accelerator") == "H100-80GB")
    sc = Scenario(targets=["10B"], accelerators=["H100-80GB"], policies=["chinchilla"], mixture={"en": 1.0})
    n = fewest_accelerators(sc, model, h100, BESIROGLU_2024, 20.0, quantile)
    at = lambda g: build_plans(sc.model_copy(update={"cluster_sizes": [g]}), model, h100, BESIROGLU_2024, bpt)[0].row(0, named=True)  # noqa: E731
    assert at(n)[f"wall_days_{quantile}"] <= 20.0 < at(n - 1)[f"wall_days_{quantile}"]
    if quantile == "p90":
        assert n > fewest_accelerators(sc, model, h100, BESIROGLU_2024, 20.0, "p50")


def test_a_plan_must_meet_deadline_and_budget_at_the_stated_quantile(fitted):
    model, acc, bpt = fitted
    h100 = acc.filter(pl.col("accelerator") == "H100-80GB")
    sc = Scenario(targets=["10B"], accelerators=["H100-80GB"], cluster_sizes=[64], policies=["chinchilla"],
                  mixture={"en": 1.0})
    r = build_plans(sc, model, h100, BESIROGLU_2024, bpt)[0].row(0, named=True)
    mid = (r["wall_days_p50"] + r["wall_days_p90"]) / 2
    for q, ok in (("p50", True), ("p90", False)):
        row = build_plans(sc.model_copy(update={"deadline_days": mid, "confidence": q}), model, h100,
                          BESIROGLU_2024, bpt)[0].row(0, named=True)
        assert row["meets_deadline"] is ok


def test_scenario_rejects_bad_parameters():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="sum to 1"):
        Scenario(mixture={"ja": 0.5, "en": 0.6})
    with pytest.raises(ValidationError):
        Scenario(targets=["10X"])
    with pytest.raises(ValidationError):
        Scenario(cluster_sizes=[0])


def test_a_bad_targets_file_names_line_and_key(tmp_path):
    from llmplan.scenario import load_scenario

    f = tmp_path / "targets.toml"
    f.write_text('targets = ["1B"]\nseq_len = 12\n\n[mixture]\nja = 0.7\nen = 0.7\n', encoding="utf-8")
    with pytest.raises(LlmplanError) as e:
        load_scenario(f)
    msg = str(e.value)
    assert f"{f}, line 2, key 'seq_len'" in msg and "greater than or equal to 128" in msg
    f.write_text('targets = ["1B"]\nseq_len = = 3\n', encoding="utf-8")
    with pytest.raises(LlmplanError, match="line 2, column"):
        load_scenario(f)


def test_headline_is_the_cheapest_p50_among_accelerators_the_fit_has_seen(built_warehouse):
    """The stated rule, checked on the plans table itself: nearest 10B, first policy, cheapest p50
    cost among accelerators with runs in the fit; no cheaper seen accelerator exists."""
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        run_id = con.execute("SELECT results_run_id FROM latest_run").fetchone()[0]
        head = pipeline.headline_row(con, run_id, "chinchilla")
        seen = {r[0] for r in con.execute("SELECT name FROM fits.efficiency WHERE kind = 'group' AND pipeline_run_id = ?",
                                          [run_id]).fetchall()}
        rows = con.execute("SELECT accelerator, cost_usd_p50 FROM plans.plans WHERE pipeline_run_id = ? AND policy = "
                           "'chinchilla' AND target_params = 1e10 AND cost_usd_p50 IS NOT NULL", [run_id]).fetchall()
    assert head["target_params"] == 1e10 and head["accelerator"] in seen
    assert head["cost_usd_p50"] == min(c for a, c in rows if a in seen)
    assert head["accelerator"] != "H200"       # same compute as an H100 at 2.4× the price


# -- a measured bytes/token weighed against its published prior ---------------------------------

def _bpt(measured_bpt: float, log_sd: float, nbytes: float) -> pl.DataFrame:
    return pl.DataFrame([
        {"language": "en", "tokenizer": "LLaMA SentencePiece", "tokenizer_family": "sentencepiece", "kind": "published",
         "bytes_per_token": 3.39, "lo": 3.39, "hi": 3.39, "log_sd": None, "n_sources": 1, "bytes": 4.749e12,
         "tokens": 1.4e12, "source": "LLaMA-1 mix"},
        {"language": "en", "tokenizer": "mistral-sp-v1", "tokenizer_family": "sentencepiece", "kind": "measured",
         "bytes_per_token": measured_bpt, "lo": measured_bpt, "hi": measured_bpt, "log_sd": log_sd, "n_sources": 1,
         "bytes": nbytes, "tokens": nbytes / measured_bpt, "source": "llmplan corpus scan (1 file)"}])


def test_a_measurement_is_weighed_by_precision_on_the_log_scale():
    """Hand arithmetic: the published 3.39 with its ±10 % band as a 95 % interval has
    σp = ln(1.1/0.9)/(2·1.95996) = 0.05119; a measurement of 1.14 with σm = 0.2 gets
    w = σp²/(σp² + σm²) = 0.002621/(0.002621 + 0.04) = 0.0615, so the plan uses
    exp(0.0615·0.13103 + 0.9385·1.22083) = exp(1.15381) = 3.170, and says so."""
    from llmplan.plan import bytes_per_token_table

    sc = Scenario(targets=["1B"], mixture={"en": 1.0}, tokenizer="mistral-sp-v1")
    row = bytes_per_token_table(sc, _bpt(1.14, 0.2, 1024)).row(0, named=True)
    sp = 0.2006707 / (2 * 1.959964)
    w = sp ** 2 / (sp ** 2 + 0.2 ** 2)
    assert w == pytest.approx(0.0615, abs=5e-4)
    assert row["bytes_per_token"] == pytest.approx(3.39 ** (1 - w) * 1.14 ** w, rel=1e-6)
    assert row["bytes_per_token"] == pytest.approx(3.170, abs=1e-3)
    assert row["bytes_per_token_weight"] == pytest.approx(w, rel=1e-6)
    assert row["bytes_per_token_kind"] == "measured"
    assert row["bytes_per_token_source"].startswith("measured 1.14 (") and "1.02 kB" in row["bytes_per_token_source"]
    # the published band as a log-symmetric 95 % interval: ×/÷ exp(1.96·σp) = √(1.1/0.9) = 1.1055 → "±11 %"
    assert "weighted 6 % with published 3.39 (±11 %) → 3.17 (measured: llmplan corpus scan (1 file)" \
        in row["bytes_per_token_source"]
    assert "prior: published: LLaMA-1 mix" in row["bytes_per_token_source"]
    # the combined interval: σ = σp·σm/√(σp² + σm²) around the combined ratio
    s = sp * 0.2 / (sp ** 2 + 0.2 ** 2) ** 0.5
    assert row["lo"] == pytest.approx(row["bytes_per_token"] * 2.718281828 ** (-1.959964 * s), rel=1e-6)
    # a measurement with no spread left (σm → 0) decides; a published choice is not weighed at all
    assert bytes_per_token_table(sc, _bpt(3.7, 1e-9, 1e12))["bytes_per_token"][0] == pytest.approx(3.7)
    other = Scenario(targets=["1B"], mixture={"en": 1.0}, tokenizer="LLaMA SentencePiece")
    row = bytes_per_token_table(other, _bpt(1.14, 0.2, 1024)).row(0, named=True)
    assert row["bytes_per_token"] == 3.39 and row["bytes_per_token_weight"] == 0.0


def _scan_into(built_warehouse, tmp_path, paths, lang):
    """A copy of the built warehouse, the scan stored in it, and fits.bytes_per_token recomputed
    by the pipeline's own step; returns that table."""
    import shutil

    from llmplan.corpus import Options
    from llmplan.corpus_scan import scan
    from llmplan.warehouse import transaction_file

    wh = tmp_path / "w.duckdb"
    shutil.copy(built_warehouse, wh)
    scan([str(p) for p in paths], Options("mistral-sp-v1", lang=lang), wh, workers=1)
    with transaction_file(wh) as con:
        pipeline.fit_bytes_per_token(con, "t")
        return con.execute("SELECT * FROM fits.bytes_per_token WHERE pipeline_run_id = 't'").pl()


def test_a_1_kb_scan_moves_a_plan_by_at_most_10_percent(built_warehouse, tmp_path):
    """Issue 21: a 1 kB, digit-heavy file scanned as English measured 1.14 bytes/token and the
    plans' English ratio went from 3.39 to 1.14 (3× the gigabytes). Weighed by what it measured
    (≈ 900 tokens of one document), it moves the plan's ratio and its GB by at most 10 %."""
    from llmplan.plan import bytes_per_token_table

    f = tmp_path / "digits.txt"
    text = "Order 7731-2209-4418, lot 55.902.117, ref 0x3f9a2c: 12 34 56 78 90 13 57 91 24 68.\n"
    f.write_text((text * (1024 // len(text) + 1))[:1024], encoding="utf-8")
    bpt = _scan_into(built_warehouse, tmp_path, [f], "en")
    m = bpt.filter(pl.col("kind") == "measured").row(0, named=True)
    assert m["bytes_per_token"] < 2.0                                  # the file itself is far from English prose
    sc = Scenario(targets=["7B"], mixture={"en": 1.0}, tokenizer="mistral-sp-v1")
    before = bytes_per_token_table(sc, bpt.filter(pl.col("kind") == "published")).row(0, named=True)
    after = bytes_per_token_table(sc, bpt).row(0, named=True)
    assert before["bytes_per_token_kind"] == "published"
    assert abs(after["bytes_per_token"] / before["bytes_per_token"] - 1) <= 0.10
    assert 0 < after["bytes_per_token_weight"] < 0.10 and "weighted" in after["bytes_per_token_source"]


DEBIAN_EN = Path("/usr/share/debian-reference/debian-reference.en.txt.gz")


def test_a_scan_of_the_whole_debian_reference_decides_the_plan(built_warehouse, tmp_path):
    """The full Debian Reference (en, ≈ 880 kB, ≈ 240k tokens; package debian-reference-en, which
    scripts/test.sh installs): the plan's English ratio lands within 1 % of the measured one."""
    from llmplan.plan import bytes_per_token_table

    bpt = _scan_into(built_warehouse, tmp_path, [DEBIAN_EN], "en")
    m = bpt.filter(pl.col("kind") == "measured").row(0, named=True)
    sc = Scenario(targets=["7B"], mixture={"en": 1.0}, tokenizer="mistral-sp-v1")
    after = bytes_per_token_table(sc, bpt).row(0, named=True)
    assert abs(after["bytes_per_token"] / m["bytes_per_token"] - 1) <= 0.01
    assert after["bytes_per_token_weight"] > 0.8
