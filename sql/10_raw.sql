-- raw.*: every value exactly as read (text), plus where it came from.
-- Rows are keyed by (file_sha256, source_line): re-reading an unchanged file adds nothing.

CREATE TABLE IF NOT EXISTS raw.training_runs (
    model VARCHAR, org VARCHAR, "year" VARCHAR, params_b VARCHAR, active_params_b VARCHAR,
    tokens_b VARCHAR, gpu_type VARCHAR, gpu_count VARCHAR, gpu_hours VARCHAR, wall_days VARCHAR,
    "source" VARCHAR, notes VARCHAR, "precision" VARCHAR,
    source_file VARCHAR NOT NULL, source_line INTEGER NOT NULL, file_sha256 VARCHAR NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);

-- Epoch AI "Notable AI Models" in Epoch's own column format (header names snake_cased).
CREATE TABLE IF NOT EXISTS raw.epoch_models (
    model VARCHAR, organization VARCHAR, publication_date VARCHAR, domain VARCHAR, task VARCHAR,
    parameters VARCHAR, parameters_notes VARCHAR, training_compute_flop VARCHAR,
    training_compute_notes VARCHAR, training_dataset VARCHAR, training_dataset_size_total VARCHAR,
    dataset_size_notes VARCHAR, confidence VARCHAR, link VARCHAR, reference VARCHAR,
    organization_categorization VARCHAR, country_of_organization VARCHAR,
    notability_criteria VARCHAR, notability_criteria_notes VARCHAR, epochs VARCHAR,
    training_time_hours VARCHAR, training_time_notes VARCHAR, training_hardware VARCHAR,
    hardware_quantity VARCHAR, hardware_utilization_mfu VARCHAR,
    training_compute_cost_2023_usd VARCHAR, compute_cost_notes VARCHAR,
    training_power_draw_w VARCHAR, base_model VARCHAR, finetune_compute_flop VARCHAR,
    finetune_compute_notes VARCHAR, batch_size VARCHAR, batch_size_notes VARCHAR,
    model_accessibility VARCHAR, training_code_accessibility VARCHAR,
    inference_code_accessibility VARCHAR, accessibility_notes VARCHAR, numerical_format VARCHAR,
    frontier_model VARCHAR, hardware_acquisition_cost VARCHAR, hardware_utilization_hfu VARCHAR,
    training_compute_cost_cloud VARCHAR, training_compute_cost_upfront VARCHAR,
    source_file VARCHAR NOT NULL, source_line INTEGER NOT NULL, file_sha256 VARCHAR NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);

-- MosaicML llm-foundry throughput tables (per-step, not whole runs).
CREATE TABLE IF NOT EXISTS raw.throughput_benchmarks (
    "section" VARCHAR, model VARCHAR, seq_len VARCHAR, n_gpus VARCHAR, gpu VARCHAR,
    mfu VARCHAR, hfu VARCHAR, model_tflop VARCHAR, micro_batch_size VARCHAR, grad_accum VARCHAR,
    global_batch_size VARCHAR, throughput_samples_s VARCHAR, throughput_tokens_s VARCHAR,
    throughput_tokens_s_gpu VARCHAR, global_batch_tokens VARCHAR, "precision" VARCHAR,
    mp_mode VARCHAR, sharding_strategy VARCHAR, activation_checkpointing VARCHAR,
    activation_cpu_offload VARCHAR, num_params VARCHAR, framework VARCHAR,
    source_file VARCHAR NOT NULL, source_line INTEGER NOT NULL, file_sha256 VARCHAR NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);

-- Per-step benchmarks in llmplan's own format (data/throughput/*.csv with tokens_per_s_per_gpu).
CREATE TABLE IF NOT EXISTS raw.step_benchmarks (
    "source" VARCHAR, source_group VARCHAR, model VARCHAR, params_b VARCHAR, active_params_b VARCHAR,
    gpu_type VARCHAR, gpu_count VARCHAR, "precision" VARCHAR, seq_len VARCHAR, global_batch_tokens VARCHAR,
    micro_batch VARCHAR, tp VARCHAR, pp VARCHAR, cp VARCHAR, ep VARCHAR, vp VARCHAR, fsdp VARCHAR,
    tokens_per_s_per_gpu VARCHAR, notes VARCHAR,
    framework VARCHAR, zero_stage VARCHAR, global_batch VARCHAR, model_tflops_per_gpu VARCHAR, mfu VARCHAR,
    derived VARCHAR,
    source_file VARCHAR NOT NULL, source_line INTEGER NOT NULL, file_sha256 VARCHAR NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);

-- Published model architectures (data/throughput/model_shapes.csv), one row per model spelling.
CREATE TABLE IF NOT EXISTS raw.model_shapes (
    model VARCHAR, canonical VARCHAR, layers VARCHAR, hidden VARCHAR, ffn VARCHAR, heads VARCHAR, kv_heads VARCHAR,
    head_dim VARCHAR, vocab VARCHAR, experts VARCHAR, top_k VARCHAR, moe_ffn VARCHAR, shared_experts VARCHAR,
    dense_layers VARCHAR, q_lora_rank VARCHAR, kv_lora_rank VARCHAR, qk_rope_head_dim VARCHAR, v_head_dim VARCHAR,
    mtp_layers VARCHAR, pos_emb_len VARCHAR, tied_embeddings VARCHAR, mlp VARCHAR, attention VARCHAR,
    linear_bias VARCHAR, "source" VARCHAR, derived VARCHAR, notes VARCHAR,
    source_file VARCHAR NOT NULL, source_line INTEGER NOT NULL, file_sha256 VARCHAR NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.accelerators (
    accelerator VARCHAR, vendor VARCHAR, peak_dense_bf16_tflops VARCHAR,
    peak_dense_fp8_tflops VARCHAR, memory_gb VARCHAR, hbm_bandwidth_tbs VARCHAR,
    on_demand_usd_per_hour_median VARCHAR, price_note VARCHAR, notes VARCHAR, nvlink_domain VARCHAR,
    nvlink_bandwidth_gbs VARCHAR, scaleout_gbits_per_gpu VARCHAR, interconnect_source VARCHAR,
    source_file VARCHAR NOT NULL, source_line INTEGER NOT NULL, file_sha256 VARCHAR NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.accelerator_aliases (
    alias VARCHAR, accelerator VARCHAR, flag VARCHAR, "source" VARCHAR,
    source_file VARCHAR NOT NULL, source_line INTEGER NOT NULL, file_sha256 VARCHAR NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.corpus_published (
    corpus VARCHAR, "language" VARCHAR, bytes_gb VARCHAR, tokens_b VARCHAR, tokenizer VARCHAR,
    "source" VARCHAR, notes VARCHAR, size_kind VARCHAR, tokenizer_family VARCHAR,
    source_file VARCHAR NOT NULL, source_line INTEGER NOT NULL, file_sha256 VARCHAR NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);

-- Corpus scans (llmplan corpus scan / corpus_stats flow): one row per (file, language, tokenizer, sample).
CREATE TABLE IF NOT EXISTS raw.corpus_measurements (
    path VARCHAR NOT NULL, file_sha256 VARCHAR NOT NULL, "language" VARCHAR NOT NULL,
    tokenizer VARCHAR NOT NULL, docs BIGINT, "bytes" BIGINT, chars BIGINT,
    tokens BIGINT,                       -- counted on the sampled documents (all of them when not sampled)
    docs_sampled BIGINT, bytes_sampled BIGINT,
    tokens_sq DOUBLE, bytes_sq DOUBLE, bytes_tokens DOUBLE,   -- Σt², Σb², Σbt over sampled documents (pooling)
    chars_sampled DOUBLE, chars_sq DOUBLE, bytes_chars DOUBLE,  -- Σc, Σc², Σbc, Σtc, Σc²/b, Σtc/b over them
    tokens_chars DOUBLE, chars_sq_per_byte DOUBLE, tokens_chars_per_byte DOUBLE,  -- (regression estimator)
    sample_fraction DOUBLE NOT NULL, seed BIGINT,
    options VARCHAR,                     -- JSON of the options that change the count (language, text field, split)
    bytes_per_token DOUBLE,
    bytes_per_token_lo DOUBLE, bytes_per_token_hi DOUBLE,
    tokens_total_est DOUBLE, tokens_total_lo DOUBLE, tokens_total_hi DOUBLE,
    bad_records BIGINT, scanned_at TIMESTAMPTZ NOT NULL
);

-- Columns added after a warehouse was first created (CREATE TABLE IF NOT EXISTS leaves old tables as they are).
ALTER TABLE raw.corpus_published ADD COLUMN IF NOT EXISTS size_kind VARCHAR;
ALTER TABLE raw.corpus_published ADD COLUMN IF NOT EXISTS tokenizer_family VARCHAR;
ALTER TABLE raw.corpus_measurements ADD COLUMN IF NOT EXISTS tokens_sq DOUBLE;
ALTER TABLE raw.corpus_measurements ADD COLUMN IF NOT EXISTS bytes_sq DOUBLE;
ALTER TABLE raw.corpus_measurements ADD COLUMN IF NOT EXISTS bytes_tokens DOUBLE;
ALTER TABLE raw.corpus_measurements ADD COLUMN IF NOT EXISTS options VARCHAR;
ALTER TABLE raw.corpus_measurements ADD COLUMN IF NOT EXISTS chars_sampled DOUBLE;
ALTER TABLE raw.corpus_measurements ADD COLUMN IF NOT EXISTS chars_sq DOUBLE;
ALTER TABLE raw.corpus_measurements ADD COLUMN IF NOT EXISTS bytes_chars DOUBLE;
ALTER TABLE raw.corpus_measurements ADD COLUMN IF NOT EXISTS tokens_chars DOUBLE;
ALTER TABLE raw.corpus_measurements ADD COLUMN IF NOT EXISTS chars_sq_per_byte DOUBLE;
ALTER TABLE raw.corpus_measurements ADD COLUMN IF NOT EXISTS tokens_chars_per_byte DOUBLE;
ALTER TABLE raw.accelerators ADD COLUMN IF NOT EXISTS nvlink_domain VARCHAR;
ALTER TABLE raw.training_runs ADD COLUMN IF NOT EXISTS "precision" VARCHAR;

-- Columns added after a warehouse was first created (issue 19: frameworks, shapes, interconnect).
ALTER TABLE raw.step_benchmarks ADD COLUMN IF NOT EXISTS framework VARCHAR;
ALTER TABLE raw.step_benchmarks ADD COLUMN IF NOT EXISTS zero_stage VARCHAR;
ALTER TABLE raw.step_benchmarks ADD COLUMN IF NOT EXISTS global_batch VARCHAR;
ALTER TABLE raw.step_benchmarks ADD COLUMN IF NOT EXISTS model_tflops_per_gpu VARCHAR;
ALTER TABLE raw.step_benchmarks ADD COLUMN IF NOT EXISTS mfu VARCHAR;
ALTER TABLE raw.step_benchmarks ADD COLUMN IF NOT EXISTS derived VARCHAR;
ALTER TABLE raw.throughput_benchmarks ADD COLUMN IF NOT EXISTS framework VARCHAR;
ALTER TABLE raw.accelerators ADD COLUMN IF NOT EXISTS nvlink_bandwidth_gbs VARCHAR;
ALTER TABLE raw.accelerators ADD COLUMN IF NOT EXISTS scaleout_gbits_per_gpu VARCHAR;
ALTER TABLE raw.accelerators ADD COLUMN IF NOT EXISTS interconnect_source VARCHAR;

-- What a curated run published of its configuration (issue 19: the whole-run chain computes the step at it).
ALTER TABLE raw.training_runs ADD COLUMN IF NOT EXISTS seq_len VARCHAR;
ALTER TABLE raw.training_runs ADD COLUMN IF NOT EXISTS global_batch_tokens VARCHAR;
ALTER TABLE raw.training_runs ADD COLUMN IF NOT EXISTS shape_model VARCHAR;
ALTER TABLE raw.training_runs ADD COLUMN IF NOT EXISTS config_source VARCHAR;
-- The parallel layout and pipeline schedule a curated run published (CSV headers tp, pp, ep, zero_stage).
ALTER TABLE raw.training_runs ADD COLUMN IF NOT EXISTS run_tp VARCHAR;
ALTER TABLE raw.training_runs ADD COLUMN IF NOT EXISTS run_pp VARCHAR;
ALTER TABLE raw.training_runs ADD COLUMN IF NOT EXISTS run_ep VARCHAR;
ALTER TABLE raw.training_runs ADD COLUMN IF NOT EXISTS run_zero_stage VARCHAR;
ALTER TABLE raw.training_runs ADD COLUMN IF NOT EXISTS pp_schedule VARCHAR;
ALTER TABLE raw.training_runs ADD COLUMN IF NOT EXISTS layout_source VARCHAR;
