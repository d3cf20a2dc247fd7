-- core.*: typed, unit-normalised rows. Counts are plain numbers (parameters, tokens), time in hours,
-- compute in FLOP, peak in FLOP/s. Rebuilt from raw.* by every pipeline run (llmplan/transform.py).

CREATE TABLE IF NOT EXISTS core.accelerators (
    accelerator VARCHAR PRIMARY KEY, vendor VARCHAR, peak_flops DOUBLE NOT NULL,
    peak_fp8_flops DOUBLE, memory_bytes DOUBLE, hbm_bandwidth_bytes_s DOUBLE,
    usd_per_hour DOUBLE, price_note VARCHAR, notes VARCHAR, source_file VARCHAR, source_line INTEGER,
    nvlink_domain BIGINT,             -- accelerators in one NVLink domain (8 for a DGX/HGX node, 72 for GB200 NVL72)
    nvlink_bytes_per_s DOUBLE,        -- scale-up link per accelerator, ONE direction, bytes/s: the datasheet's
                                      -- bidirectional GB/s × 1e9 ÷ 2 (H100: 900 GB/s → 4.5e11)
    scaleout_bytes_per_s DOUBLE,      -- scale-out NIC per accelerator, bytes/s: Gb/s × 1e9 ÷ 8 (400 Gb/s → 5e10)
    interconnect_source VARCHAR
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
    source_file VARCHAR, source_line INTEGER,
    framework VARCHAR                 -- llm-foundry
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
    fit_exclusion_reason VARCHAR, source_file VARCHAR, source_line INTEGER,
    -- issue 19: every per-step row with its stack, layout and the model's published shape
    framework VARCHAR,                -- nemo | maxtext | paxml | megatron-bridge | llm-foundry | a team's own
    vp BIGINT,                        -- virtual pipeline stages (1 without pipeline; NULL = pipeline, not stated)
    zero_stage BIGINT,                -- 3 for FSDP full sharding; NULL = not stated
    global_batch DOUBLE,              -- sequences per step where printed
    model_tflops_per_gpu DOUBLE,      -- as published (the source's FLOP convention)
    published_mfu DOUBLE,             -- MFU as the source printed or derived it (fraction)
    layers BIGINT, hidden BIGINT, ffn BIGINT, heads BIGINT, kv_heads BIGINT, head_dim BIGINT, vocab BIGINT,
    experts BIGINT, top_k BIGINT, moe_ffn BIGINT, shared_experts BIGINT, dense_layers BIGINT,
    tied_embeddings BOOLEAN, mlp VARCHAR, attention VARCHAR,  -- from core.model_shapes; NULL where unknown
    q_lora_rank BIGINT, kv_lora_rank BIGINT, qk_rope_head_dim BIGINT, v_head_dim BIGINT   -- MLA, where the shape has it
);

-- Published model architectures (data/throughput/model_shapes.csv).
CREATE TABLE IF NOT EXISTS core.model_shapes (
    model VARCHAR PRIMARY KEY, canonical VARCHAR, layers BIGINT, hidden BIGINT, ffn BIGINT, heads BIGINT,
    kv_heads BIGINT, head_dim BIGINT, vocab BIGINT, experts BIGINT, top_k BIGINT, moe_ffn BIGINT,
    shared_experts BIGINT, dense_layers BIGINT, q_lora_rank BIGINT, kv_lora_rank BIGINT, qk_rope_head_dim BIGINT,
    v_head_dim BIGINT, mtp_layers BIGINT, pos_emb_len BIGINT, tied_embeddings BOOLEAN, mlp VARCHAR,
    attention VARCHAR, linear_bias BOOLEAN, "source" VARCHAR, derived VARCHAR, notes VARCHAR,
    source_file VARCHAR, source_line INTEGER
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
ALTER TABLE core.accelerators ADD COLUMN IF NOT EXISTS nvlink_bytes_per_s DOUBLE;
ALTER TABLE core.accelerators ADD COLUMN IF NOT EXISTS scaleout_bytes_per_s DOUBLE;
ALTER TABLE core.accelerators ADD COLUMN IF NOT EXISTS interconnect_source VARCHAR;
ALTER TABLE core.throughput ADD COLUMN IF NOT EXISTS framework VARCHAR;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS framework VARCHAR;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS vp BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS zero_stage BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS global_batch DOUBLE;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS model_tflops_per_gpu DOUBLE;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS published_mfu DOUBLE;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS layers BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS hidden BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS ffn BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS heads BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS kv_heads BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS head_dim BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS vocab BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS experts BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS top_k BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS moe_ffn BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS shared_experts BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS dense_layers BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS tied_embeddings BOOLEAN;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS mlp VARCHAR;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS attention VARCHAR;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS q_lora_rank BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS kv_lora_rank BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS qk_rope_head_dim BIGINT;
ALTER TABLE core.step_benchmarks ADD COLUMN IF NOT EXISTS v_head_dim BIGINT;

-- What a curated run published of its configuration (NULL: the year's context, the batch law, the shape rule).
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS seq_len BIGINT;
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS global_batch_tokens DOUBLE;
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS shape_model VARCHAR;
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS config_source VARCHAR;
-- The parallel layout and pipeline schedule a curated run published (NULL: searched as for a plan).
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS run_tp BIGINT;
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS run_pp BIGINT;
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS run_ep BIGINT;
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS run_zero_stage BIGINT;
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS pp_schedule VARCHAR;
ALTER TABLE core.training_runs ADD COLUMN IF NOT EXISTS layout_source VARCHAR;
