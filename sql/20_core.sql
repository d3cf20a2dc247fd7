-- core.*: typed, unit-normalised rows. Counts are plain numbers (parameters, tokens), time in hours,
-- compute in FLOP, peak in FLOP/s. Rebuilt from raw.* by every pipeline run (llmplan/transform.py).

CREATE TABLE IF NOT EXISTS core.accelerators (
    accelerator VARCHAR PRIMARY KEY, vendor VARCHAR, peak_flops DOUBLE NOT NULL,
    peak_fp8_flops DOUBLE, memory_bytes DOUBLE, hbm_bandwidth_bytes_s DOUBLE,
    usd_per_hour DOUBLE, price_note VARCHAR, notes VARCHAR, source_file VARCHAR, source_line INTEGER,
    nvlink_domain BIGINT              -- accelerators in one NVLink domain (8 for a DGX/HGX node, 72 for GB200 NVL72)
);

CREATE TABLE IF NOT EXISTS core.accelerator_aliases (
    alias_key VARCHAR PRIMARY KEY, alias VARCHAR, accelerator VARCHAR, flag VARCHAR
);

-- One row per training run: the curated file and Epoch's rows merged, duplicates resolved.
CREATE TABLE IF NOT EXISTS core.training_runs (
    run_key VARCHAR PRIMARY KEY, model VARCHAR NOT NULL, family VARCHAR, org VARCHAR,
    "year" INTEGER, params DOUBLE, active_params DOUBLE, tokens DOUBLE,
    "precision" VARCHAR,              -- bf16 (or fp16) unless the run trained in fp8
    tokens_rule VARCHAR,              -- how tokens were read: curated:tokens, or for Epoch rows
                                      -- marker:|compute:|notes:|default: + tokens|words (transform.epoch_tokens)
    accelerator_raw VARCHAR, accelerator VARCHAR, accelerator_flag VARCHAR,
    gpu_count DOUBLE, gpu_hours DOUBLE, wall_days DOUBLE,
    training_flop DOUBLE,             -- 6·N·D (N = active parameters for MoE)
    attention_flop DOUBLE,            -- 12·L·s·d·D when shape and sequence length are known (not in the shipped runs)
    peak_flops DOUBLE,
    achieved_flops_per_gpu DOUBLE, utilization DOUBLE,
    origin VARCHAR NOT NULL,          -- 'curated' or 'epoch'
    source_quality VARCHAR,           -- 'primary' | 'secondary' | 'epoch'
    "source" VARCHAR, merge_note VARCHAR,
    fit_exclusion_reason VARCHAR,     -- NULL = used by the efficiency fit
    source_file VARCHAR, source_line INTEGER
);

-- Per-step throughput benchmark rows (MosaicML llm-foundry).
CREATE TABLE IF NOT EXISTS core.throughput (
    model VARCHAR, params DOUBLE, seq_len INTEGER, n_gpus INTEGER, accelerator VARCHAR,
    "precision" VARCHAR, peak_flops DOUBLE, tokens_per_s_gpu DOUBLE, mfu DOUBLE, hfu DOUBLE,
    mfu_6n DOUBLE,                    -- tokens/s/GPU × 6N ÷ peak: the 6·N·D utilisation the fit uses
    attention_flop_per_token DOUBLE,  -- implied by the reported MFU (which counts attention) minus 6N
    activation_checkpointing BOOLEAN, fit_exclusion_reason VARCHAR,
    source_file VARCHAR, source_line INTEGER
);

-- Per-step benchmarks in one shape (llmplan/transform.py step_benchmarks; fitted by llmplan/step.py).
CREATE TABLE IF NOT EXISTS core.step_benchmarks (
    source_group VARCHAR, "source" VARCHAR, model VARCHAR, params DOUBLE, active_params DOUBLE, accelerator VARCHAR,
    gpu_count DOUBLE, "precision" VARCHAR, seq_len BIGINT, global_batch_tokens DOUBLE, micro_batch BIGINT,
    tp BIGINT, pp BIGINT, cp BIGINT, ep BIGINT, fsdp BIGINT, recompute VARCHAR, tokens_per_s_per_gpu DOUBLE,
    peak_bf16_flops DOUBLE, peak_fp8_flops DOUBLE, nvlink_domain BIGINT,
    peak_flops DOUBLE,                -- the peak of the precision the step ran in
    step_mfu DOUBLE,                  -- tokens/s/GPU × 6·N_active ÷ peak_flops
    layout_eff DOUBLE,                -- pipeline bubble × recompute factor (physics, not fitted)
    fit_exclusion_reason VARCHAR, source_file VARCHAR, source_line INTEGER
);

CREATE TABLE IF NOT EXISTS core.corpus_published (
    corpus VARCHAR, "language" VARCHAR, language_raw VARCHAR, "bytes" DOUBLE, tokens DOUBLE,
    size_kind VARCHAR,                -- utf8_text | compressed | unknown: what "bytes" measures
    bytes_per_token DOUBLE,           -- bytes / tokens, only for utf8_text sizes (NULL otherwise)
    tokenizer VARCHAR, tokenizer_family VARCHAR, "source" VARCHAR, source_file VARCHAR,
    source_line INTEGER
);

-- Accelerator names seen in inputs that could not be mapped to the accelerator table.
CREATE TABLE IF NOT EXISTS core.unmapped_accelerators (
    origin VARCHAR, name VARCHAR, n_rows BIGINT
);

-- Columns added after a warehouse was first created (CREATE TABLE IF NOT EXISTS leaves old tables as they are).
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS tokens_rule VARCHAR;
ALTER TABLE core.corpus_published ADD COLUMN IF NOT EXISTS size_kind VARCHAR;
ALTER TABLE core.corpus_published ADD COLUMN IF NOT EXISTS tokenizer_family VARCHAR;
ALTER TABLE core.accelerators ADD COLUMN IF NOT EXISTS nvlink_domain BIGINT;
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS "precision" VARCHAR;
