"""What each kind of input file must look like, declared once (pandera), with the folder it
is read from. The raw layer keeps the text as read; these schemas type and check it."""

from dataclasses import dataclass, field

import pandera.polars as pa
import polars as pl

POS = pa.Check.gt(0)
SIZE_KINDS = ("utf8_text", "compressed", "unknown")
PRECISIONS = ("bf16", "fp8")
PP_SCHEDULES = ("1f1b", "dualpipe", "zero-bubble")   # llmplan.perf.model.PP_SCHEDULES (rows of DeepSeek-V3 Table 2)


@dataclass(frozen=True)
class Col:
    header: str                      # as written in the CSV header
    name: str                        # column name in raw.* and in the typed frame
    dtype: type[pl.DataType] = pl.Utf8
    required: bool = True            # the header must contain it
    nullable: bool = True
    checks: tuple = ()
    unique: bool = False


@dataclass(frozen=True)
class Kind:
    name: str                        # 'training_runs', 'epoch', ...
    folder: str                      # under data/: every *.csv in it is read
    raw_table: str
    columns: tuple[Col, ...]
    key: tuple[str, ...] = ()        # duplicate key across all files of this kind
    extra: dict = field(default_factory=dict)

    def schema(self) -> pa.DataFrameSchema:
        return pa.DataFrameSchema(
            {c.name: pa.Column(c.dtype, checks=list(c.checks), nullable=c.nullable, unique=c.unique) for c in self.columns},
            strict=False,
        )


def _f(header, name, required=True, nullable=True, positive=True, dtype=pl.Float64, checks=()):
    return Col(header, name, dtype, required, nullable, ((POS,) if positive else ()) + tuple(checks))


TRAINING_RUNS = Kind(
    "training_runs", "training_runs", "raw.training_runs",
    (
        Col("model", "model", nullable=False),
        Col("org", "org"),
        Col("year", "year", pl.Int64, nullable=False, checks=(pa.Check.in_range(1950, 2100),)),
        _f("params_b", "params_b", nullable=False),
        _f("active_params_b", "active_params_b"),
        _f("tokens_b", "tokens_b"),
        Col("gpu_type", "gpu_type", nullable=False),
        _f("gpu_count", "gpu_count"),
        _f("gpu_hours", "gpu_hours"),
        _f("wall_days", "wall_days"),
        Col("source", "source", nullable=False),
        Col("notes", "notes", required=False),
        # bf16 (default when empty; fp16 for V100-era runs counts alike) or fp8: the precision the
        # run trained in, so the per-step model compares it with that precision's peak.
        Col("precision", "precision", required=False, checks=(pa.Check.isin(PRECISIONS + ("fp16",)),)),
        # What the run published of its configuration (empty: the year's usual context, the batch
        # law, the shape rule): the whole-run chain computes the step at these (llmplan.step.run_frame).
        Col("seq_len", "seq_len", pl.Int64, required=False, checks=(POS,)),
        _f("global_batch_tokens", "global_batch_tokens", required=False),
        Col("shape_model", "shape_model", required=False),      # a `model` of data/throughput/model_shapes.csv
        Col("config_source", "config_source", required=False),
        # The parallel layout and pipeline schedule the run's paper or launch script states (empty:
        # unknown, searched as for a plan). Named run_* so they never meet the per-step rows' layout
        # columns; llmplan.step.run_frame pins the search to them.
        Col("tp", "run_tp", pl.Int64, required=False, checks=(POS,)),
        Col("pp", "run_pp", pl.Int64, required=False, checks=(POS,)),
        Col("ep", "run_ep", pl.Int64, required=False, checks=(POS,)),
        Col("zero_stage", "run_zero_stage", pl.Int64, required=False, checks=(pa.Check.isin((1, 3)),)),
        Col("pp_schedule", "pp_schedule", required=False, checks=(pa.Check.isin(PP_SCHEDULES),)),
        Col("layout_source", "layout_source", required=False),
    ),
    key=("model",),
)

# Epoch AI's own header names. Only the fields the adapter uses are required; a newer download
# with more columns loads as-is.
_EPOCH_COLUMNS = [
    ("Model", "model", pl.Utf8, True), ("Organization", "organization", pl.Utf8, True),
    ("Publication date", "publication_date", pl.Utf8, True), ("Domain", "domain", pl.Utf8, True),
    ("Task", "task", pl.Utf8, False), ("Parameters", "parameters", pl.Float64, True),
    ("Parameters notes", "parameters_notes", pl.Utf8, False),
    ("Training compute (FLOP)", "training_compute_flop", pl.Float64, True),
    ("Training compute notes", "training_compute_notes", pl.Utf8, False),
    ("Training dataset", "training_dataset", pl.Utf8, False),
    ("Training dataset size (total)", "training_dataset_size_total", pl.Utf8, True),  # may list several values
    ("Dataset size notes", "dataset_size_notes", pl.Utf8, True),
    ("Confidence", "confidence", pl.Utf8, True), ("Link", "link", pl.Utf8, False),
    ("Reference", "reference", pl.Utf8, False),
    ("Organization categorization", "organization_categorization", pl.Utf8, False),
    ("Country (of organization)", "country_of_organization", pl.Utf8, False),
    ("Notability criteria", "notability_criteria", pl.Utf8, False),
    ("Notability criteria notes", "notability_criteria_notes", pl.Utf8, False),
    ("Epochs", "epochs", pl.Float64, True),
    ("Training time (hours)", "training_time_hours", pl.Float64, True),
    ("Training time notes", "training_time_notes", pl.Utf8, False),
    ("Training hardware", "training_hardware", pl.Utf8, True),
    ("Hardware quantity", "hardware_quantity", pl.Float64, True),
    ("Hardware utilization (MFU)", "hardware_utilization_mfu", pl.Float64, False),
    ("Training compute cost (2023 USD)", "training_compute_cost_2023_usd", pl.Utf8, False),
    ("Compute cost notes", "compute_cost_notes", pl.Utf8, False),
    ("Training power draw (W)", "training_power_draw_w", pl.Utf8, False),
    ("Base model", "base_model", pl.Utf8, True),
    ("Finetune compute (FLOP)", "finetune_compute_flop", pl.Utf8, False),
    ("Finetune compute notes", "finetune_compute_notes", pl.Utf8, False),
    ("Batch size", "batch_size", pl.Utf8, False), ("Batch size notes", "batch_size_notes", pl.Utf8, False),
    ("Model accessibility", "model_accessibility", pl.Utf8, False),
    ("Training code accessibility", "training_code_accessibility", pl.Utf8, False),
    ("Inference code accessibility", "inference_code_accessibility", pl.Utf8, False),
    ("Accessibility notes", "accessibility_notes", pl.Utf8, False),
    ("Numerical format", "numerical_format", pl.Utf8, False),
    ("Frontier model", "frontier_model", pl.Utf8, False),
    ("Hardware acquisition cost", "hardware_acquisition_cost", pl.Utf8, False),
    ("Hardware utilization (HFU)", "hardware_utilization_hfu", pl.Utf8, False),
    ("Training compute cost (cloud)", "training_compute_cost_cloud", pl.Utf8, False),
    ("Training compute cost (upfront)", "training_compute_cost_upfront", pl.Utf8, False),
]
EPOCH = Kind(
    "epoch", "epoch", "raw.epoch_models",
    tuple(
        Col(h, n, t, req, nullable=(n != "model"),
            checks=((pa.Check.ge(0),) if t is pl.Float64 else ()))
        for h, n, t, req in _EPOCH_COLUMNS
    ),
)

# Per-step benchmarks in llmplan's own format (the shipped Megatron-Bridge tables, and your own
# benchmark CSVs): data/throughput/*.csv whose header has tokens_per_s_per_gpu. Each file is a
# source of its own in the fit unless source_group names one.
STEP_BENCHMARKS = Kind(
    "step_benchmarks", "throughput", "raw.step_benchmarks",
    (
        Col("source", "source", nullable=False), Col("source_group", "source_group", required=False),
        Col("model", "model", nullable=False),
        _f("params_b", "params_b", nullable=False), _f("active_params_b", "active_params_b", required=False),
        Col("gpu_type", "gpu_type", nullable=False), Col("gpu_count", "gpu_count", pl.Int64, nullable=False, checks=(POS,)),
        Col("precision", "precision", nullable=False, checks=(pa.Check.isin(PRECISIONS),)),
        Col("seq_len", "seq_len", pl.Int64, nullable=False, checks=(POS,)),
        _f("global_batch_tokens", "global_batch_tokens", required=False),
        Col("micro_batch", "micro_batch", pl.Int64, required=False, checks=(POS,)),
        Col("tp", "tp", pl.Int64, nullable=False, checks=(POS,)), Col("pp", "pp", pl.Int64, nullable=False, checks=(POS,)),
        Col("cp", "cp", pl.Int64, required=False, checks=(POS,)), Col("ep", "ep", pl.Int64, required=False, checks=(POS,)),
        Col("vp", "vp", pl.Int64, required=False, checks=(POS,)),
        Col("fsdp", "fsdp", pl.Int64, required=False, checks=(pa.Check.isin((0, 1)),)),
        _f("tokens_per_s_per_gpu", "tokens_per_s_per_gpu", nullable=False),
        Col("notes", "notes", required=False),
        # The software stack the step ran on (nemo, maxtext, megatron-bridge, …): the new step model
        # learns one multiplier per framework. Required in every shipped per-step file.
        Col("framework", "framework", required=False),
        # ZeRO stage (0–3) where the source states it; FSDP full sharding = 3.
        Col("zero_stage", "zero_stage", pl.Int64, required=False, checks=(pa.Check.isin((0, 1, 2, 3)),)),
        # Kept from tables that print them: sequences per step, model TFLOP/s/GPU and MFU as published.
        _f("global_batch", "global_batch", required=False),
        _f("model_tflops_per_gpu", "model_tflops_per_gpu", required=False),
        _f("mfu", "mfu", required=False),
        Col("derived", "derived", required=False),
    ),
    extra={"header_has": "tokens_per_s_per_gpu", "exclude": ("model_shapes.csv",)},
)

THROUGHPUT = Kind(
    "throughput", "throughput", "raw.throughput_benchmarks",
    (
        Col("section", "section"), Col("Model", "model", nullable=False),
        Col("SeqLen (T)", "seq_len", pl.Int64, nullable=False, checks=(POS,)),
        Col("# GPUs", "n_gpus", pl.Int64, nullable=False, checks=(POS,)),
        Col("GPU", "gpu", nullable=False),
        _f("MFU", "mfu", nullable=False), _f("HFU", "hfu"), _f("Model TFLOP", "model_tflop"),
        _f("MicroBatchSize", "micro_batch_size"), _f("GradAccum", "grad_accum"),
        _f("GlobalBatchSize", "global_batch_size"), _f("Throughput (S/s)", "throughput_samples_s", positive=False, checks=(pa.Check.ge(0),)),  # rounded: 0 for tiny rates
        _f("Throughput (T/s)", "throughput_tokens_s"),
        _f("Throughput (T/s/GPU)", "throughput_tokens_s_gpu", nullable=False),
        _f("GlobalBatchSize (T)", "global_batch_tokens"), Col("Precision", "precision"),
        Col("MP Mode", "mp_mode"), Col("Sharding Strategy", "sharding_strategy"),
        Col("Activation Checkpointing", "activation_checkpointing"),
        Col("Activation CPUOffload", "activation_cpu_offload"),
        _f("NumParams", "num_params", nullable=False),
        Col("framework", "framework", required=False),       # llmplan's addition: llm-foundry
    ),
    extra={"header_lacks": "tokens_per_s_per_gpu",           # MosaicML's own header; the other format shares the folder
           "exclude": ("model_shapes.csv",)},
)

# Published architecture of every model named in the per-step files (data/throughput/model_shapes.csv),
# one row per spelling used there; joined to core.step_benchmarks by model name.
_SHAPE_INTS = ("layers", "hidden", "ffn", "heads", "kv_heads", "head_dim", "vocab", "experts", "top_k", "moe_ffn",
               "shared_experts", "dense_layers", "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "v_head_dim",
               "mtp_layers", "pos_emb_len")
_SHAPE_REQUIRED = ("layers", "hidden", "ffn", "heads", "kv_heads", "vocab")
MODEL_SHAPES = Kind(
    "model_shapes", "throughput", "raw.model_shapes",
    (
        Col("model", "model", nullable=False, unique=True), Col("canonical", "canonical", required=False),
        *(Col(n, n, pl.Int64, required=n in _SHAPE_REQUIRED, nullable=n not in _SHAPE_REQUIRED,
              checks=((POS,) if n in _SHAPE_REQUIRED else (pa.Check.ge(0),))) for n in _SHAPE_INTS),
        Col("tied_embeddings", "tied_embeddings", nullable=False, checks=(pa.Check.isin(("true", "false")),)),
        Col("mlp", "mlp", nullable=False, checks=(pa.Check.isin(("swiglu", "gelu", "squared_relu")),)),
        Col("attention", "attention", nullable=False, checks=(pa.Check.isin(("mha", "gqa", "mla")),)),
        Col("linear_bias", "linear_bias", required=False, checks=(pa.Check.isin(("true", "false")),)),
        Col("source", "source", nullable=False), Col("derived", "derived", required=False),
        Col("notes", "notes", required=False),
    ),
    key=("model",),
    extra={"files": ("throughput/model_shapes.csv",)},
)

ACCELERATORS = Kind(
    "accelerators", "accelerators", "raw.accelerators",
    (
        Col("accelerator", "accelerator", nullable=False, unique=True),
        Col("vendor", "vendor"),
        _f("peak_dense_bf16_tflops", "peak_dense_bf16_tflops", nullable=False),
        _f("peak_dense_fp8_tflops", "peak_dense_fp8_tflops"),
        _f("memory_gb", "memory_gb", nullable=False), _f("hbm_bandwidth_tbs", "hbm_bandwidth_tbs"),
        _f("on_demand_usd_per_hour_median", "on_demand_usd_per_hour_median"),
        Col("price_note", "price_note"), Col("notes", "notes", required=False),
        # accelerators in one NVLink (or equivalent) domain: 8 for an HGX/DGX node, 72 for GB200 NVL72
        Col("nvlink_domain", "nvlink_domain", pl.Int64, required=False, checks=(POS,)),
        # Scale-up link per accelerator, both directions summed as datasheets print it (NVLink,
        # Infinity Fabric, ICI), GB/s; and the scale-out NIC per accelerator, Gb/s.
        _f("nvlink_bandwidth_gbs", "nvlink_bandwidth_gbs", required=False),
        _f("scaleout_gbits_per_gpu", "scaleout_gbits_per_gpu", required=False),
        Col("interconnect_source", "interconnect_source", required=False),
    ),
    key=("accelerator",),
)

ALIASES = Kind(
    "accelerator_aliases", "", "raw.accelerator_aliases",
    (
        Col("alias", "alias", nullable=False), Col("accelerator", "accelerator"),
        Col("flag", "flag"), Col("source", "source", required=False),
    ),
    extra={"files": ("accelerator_aliases.csv",)},
)

CORPUS_PUBLISHED = Kind(
    "corpus_published", "corpus_published", "raw.corpus_published",
    (
        Col("corpus", "corpus", nullable=False), Col("language", "language"),
        _f("bytes_gb", "bytes_gb"), _f("tokens_b", "tokens_b"), Col("tokenizer", "tokenizer"),
        Col("source", "source", nullable=False), Col("notes", "notes", required=False),
        # What bytes_gb measures: only utf8_text sizes give a bytes/token ratio (a compressed or
        # cache size is not the text). Missing = unknown.
        Col("size_kind", "size_kind", required=False, checks=(pa.Check.isin(SIZE_KINDS),)),
        # sentencepiece | byte-level-bpe | …: a plan prefers ratios of its own tokenizer, then of its family.
        Col("tokenizer_family", "tokenizer_family", required=False),
    ),
    key=("corpus",),
)

ALL_KINDS = (ACCELERATORS, ALIASES, TRAINING_RUNS, EPOCH, THROUGHPUT, STEP_BENCHMARKS, CORPUS_PUBLISHED, MODEL_SHAPES)

# `llmplan predict --runs FILE.csv`
PREDICT_RUNS = Kind(
    "predict_runs", "", "",
    (
        Col("model", "model", nullable=False),
        _f("params_b", "params_b", nullable=False),
        _f("active_params_b", "active_params_b", required=False),
        _f("tokens_b", "tokens_b", nullable=False),
        Col("gpu_type", "gpu_type", nullable=False),
        _f("gpu_count", "gpu_count", required=False),
        Col("precision", "precision", required=False, checks=(pa.Check.isin(PRECISIONS),)),
    ),
)

# `llmplan predict --per-step --runs FILE.csv`: one step configuration per row.
PREDICT_STEPS = Kind(
    "predict_steps", "", "",
    (
        Col("model", "model", nullable=False),
        _f("params_b", "params_b", nullable=False),
        _f("active_params_b", "active_params_b", required=False),
        Col("gpu_type", "gpu_type", nullable=False),
        Col("gpu_count", "gpu_count", pl.Int64, nullable=False, checks=(POS,)),
        Col("precision", "precision", nullable=False, checks=(pa.Check.isin(PRECISIONS),)),
        Col("seq_len", "seq_len", pl.Int64, nullable=False, checks=(POS,)),
        _f("global_batch", "global_batch", required=False),             # tokens per step
        Col("tp", "tp", pl.Int64, required=False, checks=(POS,)),
        Col("pp", "pp", pl.Int64, required=False, checks=(POS,)),
        Col("ep", "ep", pl.Int64, required=False, checks=(POS,)),
        Col("cp", "cp", pl.Int64, required=False, checks=(POS,)),
        Col("vp", "vp", pl.Int64, required=False, checks=(POS,)),
        Col("micro_batch", "micro_batch", pl.Int64, required=False, checks=(POS,)),
        Col("zero_stage", "zero_stage", pl.Int64, required=False, checks=(pa.Check.isin([0, 1, 2, 3]),)),
        Col("recompute", "recompute", required=False, checks=(pa.Check.isin(["none", "selective", "full"]),)),
        *[Col(k, k, pl.Int64, required=False, checks=(POS,)) for k in ("layers", "hidden", "ffn", "heads", "kv_heads", "vocab",
                                                                       "experts", "top_k", "moe_ffn")],
        *[Col(k, k, pl.Int64, required=False, checks=(pa.Check.ge(0),)) for k in ("shared_experts", "dense_layers")],
        Col("shape", "shape", required=False),    # a model of data/throughput/model_shapes.csv; the row's columns override it
        # Measured rows (`--measured`): what the team's own stack achieved on this configuration.
        _f("tokens_per_s_per_gpu", "tokens_per_s_per_gpu", required=False),
    ),
)

# `llmplan fit-scaling --losses FILE.csv`: one row per finished small run.
SCALING_LOSSES = Kind(
    "scaling_losses", "", "",
    (
        _f("params", "params", nullable=False),
        _f("tokens", "tokens", nullable=False),
        _f("loss", "loss", nullable=False),
    ),
)
