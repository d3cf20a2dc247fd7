"""A planning scenario: what to plan for. One pydantic model serves data/targets.toml, the CLI
and the Prefect run form (its field descriptions and bounds become the UI's form)."""

import math
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from llmplan.errors import LlmplanError
from llmplan.units import parse_size

Policy = Literal["chinchilla", "compute-optimal", "fixed", "overtrain", "inference-aware"]


SHAPE_FIELDS = ("layers", "hidden", "ffn", "heads", "kv_heads", "moe_ffn", "shared_experts", "dense_layers")


class Scenario(BaseModel):
    """Target model sizes, hardware and data for the plan grid."""

    targets: list[str] = Field(
        default=["125M", "1.3B", "7B", "10B", "70B", "175B"], min_length=1, max_length=200,
        description="Target model sizes (parameters), e.g. 125M, 10B, 1.5T")
    accelerators: list[str] = Field(
        default=["A100-80GB", "H100-80GB", "H200", "B200", "MI300X"], min_length=1,
        description="Accelerators to plan for (names or aliases from the accelerator table)")
    cluster_sizes: list[int] = Field(default=[8, 64, 256, 1024], min_length=1,
                                     description="Cluster sizes (number of accelerators)")
    policies: list[Policy] = Field(default=["chinchilla", "compute-optimal"], min_length=1,
                                   description="Token policies")
    seq_len: int = Field(default=4096, ge=128, le=1_048_576, description="Training sequence length (tokens)")
    micro_batch: int | None = Field(default=None, ge=1, le=1024, description="Micro-batch per accelerator (sequences); "
                                                                            "default: the layout search chooses 1 or 2")
    zero_stage: Literal[0, 1, 2, 3] = Field(default=3, description="ZeRO stage for optimizer/gradient/weight sharding")
    fp32_grads: bool = Field(default=True, description="Keep an fp32 gradient partition besides the bf16 gradients "
                                                        "(DeepSpeed's and Megatron's bf16 default; 4 more bytes/param)")
    vocab_size: int | None = Field(default=None, ge=256, le=10_000_000,
                            description="Vocabulary size: the embedding and the fp32 logits buffer of the loss "
                                        "(default: the shape rule's, 128,256 as Llama 3)")
    flash_attention: bool = Field(default=True, description="FlashAttention: the attention-score matrix is not stored "
                                                             "(off adds 5·a·s/h per layer, Korthikanti et al. 2022)")
    precision: Literal["bf16", "fp8"] = Field(default="bf16", description="Training precision: FP8 runs against the FP8 "
                                                                        "peak (accelerators without one are an error)")
    active_fraction: float | None = Field(default=None, gt=0, le=1, description="Mixture of experts: active ÷ total parameters "
                                                                               "for every target (FLOPs on the active, memory on all)")
    experts: int | None = Field(default=None, ge=1, le=4096, description="Mixture of experts: experts per layer (bounds expert parallelism)")
    global_batch_tokens: str | None = Field(default=None, description="Tokens per optimizer step (default: DeepSeek LLM's "
                                                                      "B_opt = 0.2920·C^0.3271)")
    headline_targets: list[str] = Field(default=[], max_length=12,
                                        description="Targets the report answers first, one card each (default: the target "
                                                    "nearest 10B)")
    report_lang: Literal["en", "ja"] = Field(default="en", description="Language of the report: en or ja (日本語)")
    confidence: Literal["p50", "p90"] = Field(default="p50", description="Quantile at which a plan must meet the deadline "
                                                                          "and the budget (p90: the safe answer)")
    scaling_law: str = Field(default="auto",
                             description="Loss law: auto (your fit from `llmplan fit-scaling` when present, else "
                                         "besiroglu2024), hoffmann2022, besiroglu2024, or user")
    fixed_tokens: str = Field(default="2T", description="Tokens for the 'fixed' policy")
    overtrain_factor: float = Field(default=5.0, gt=1, le=1000, description="'overtrain' = factor × 20 tokens/param")
    inference_tokens: str = Field(default="2T", description="Lifetime inference tokens for 'inference-aware'")
    tokenizer: str = Field(default="mistral-sp-v1", description="Tokenizer whose measured bytes/token to use")
    mixture: dict[str, float] = Field(default={"ja": 0.4, "en": 0.4, "code": 0.2},
                                      description="Share of training tokens per language (sums to 1)")
    unique_tokens: dict[str, str] = Field(default={}, description="Unique tokens available per language, e.g. {'ja': '300B'}")
    price_usd_per_hour: dict[str, float] = Field(default={}, description="Price overrides per accelerator-hour (USD)")
    deadline_days: float | None = Field(default=None, gt=0, description="Optional deadline: flag plans that take longer")
    budget_usd: float | None = Field(default=None, gt=0, description="Optional budget: flag plans that cost more")
    layers: int | None = Field(default=None, ge=1, le=1000, description="Model shape: transformer layers (default: by "
                                                                        "llmplan's rule from the size, docs/methods.md)")
    hidden: int | None = Field(default=None, ge=64, le=1_000_000, description="Model shape: hidden size")
    ffn: int | None = Field(default=None, ge=64, le=10_000_000, description="Model shape: MLP (SwiGLU) inner size")
    heads: int | None = Field(default=None, ge=1, le=4096, description="Model shape: attention heads")
    kv_heads: int | None = Field(default=None, ge=1, le=4096, description="Model shape: key/value heads (grouped-query attention)")
    top_k: int | None = Field(default=None, ge=1, le=256, description="Mixture of experts: experts each token uses")
    moe_ffn: int | None = Field(default=None, ge=16, le=1_000_000, description="Mixture of experts: each expert's MLP "
                                                                             "(SwiGLU) inner size (default: solved from the sizes)")
    shared_experts: int | None = Field(default=None, ge=0, le=64, description="Mixture of experts: always-active experts "
                                                                              "per MoE layer (default: 1 from 64 experts up or with top-1)")
    dense_layers: int | None = Field(default=None, ge=0, le=1000, description="Mixture of experts: layers with a dense MLP "
                                                                              "instead of experts (default 0)")
    shape_columns: dict[str, float] = Field(default={}, description="A published shape (data/throughput/model_shapes.csv; "
                                                                    "`llmplan plan --shape NAME`), column → value; the "
                                                                    "fields above override it")
    framework: str | None = Field(default=None, description="Training stack whose fitted multiplier plans use (e.g. nemo, "
                                                            "megatron-bridge, or a name calibrated from measured rows); "
                                                            "default: a new stack, the between-framework spread in the band")
    storage_gbps: float = Field(default=1.0, gt=0, le=1e6,
                                description="Checkpoint write bandwidth per 8-accelerator node, GB/s (default 1.0: Llama 3 "
                                            "§3.3.1, 2 TB/s sustained for 2,048 nodes; llmplan.goodput)")
    restart_minutes: float = Field(default=11.0, gt=0, le=10_000,
                                   description="Minutes to restart after an interruption (default 11: median automatic retry, "
                                               "arXiv 2605.09370; llmplan.goodput)")
    pp_schedule: Literal["1f1b", "dualpipe", "zero-bubble"] | None = Field(
        default=None, description="Pipeline schedule your stack runs: 1f1b (plain), zero-bubble (ZB-H1), dualpipe (DeepSeek-V3: "
                                  "all-to-all hidden behind compute); default: Megatron's interleaved 1F1B (llmplan.perf.model)")

    @field_validator("targets", "fixed_tokens", "inference_tokens", "unique_tokens", "global_batch_tokens", "headline_targets")
    @classmethod
    def _sizes(cls, v):
        values = [] if v is None else [v] if isinstance(v, str) else list(v.values()) if isinstance(v, dict) else v
        for s in values:
            try:
                parse_size(s)
            except LlmplanError as e:
                raise ValueError(str(e)) from None
        return v

    @field_validator("cluster_sizes")
    @classmethod
    def _clusters(cls, v):
        if any(c < 1 or c > 1_000_000 for c in v):
            raise ValueError("cluster sizes must be between 1 and 1,000,000 accelerators")
        return v

    @field_validator("mixture")
    @classmethod
    def _mix(cls, v):
        if not v or any(s < 0 for s in v.values()):
            raise ValueError("the mixture needs at least one language, and no share may be negative")
        total = sum(v.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"mixture shares must sum to 1, got {total:g}")
        return v

    def shape(self) -> dict[str, float]:
        """The shape the user gave: a named published shape's columns, overridden by the shape fields
        given (the rest follow llmplan.perf.shapes' rule)."""
        given = {k: getattr(self, k) for k in SHAPE_FIELDS if getattr(self, k) is not None}
        return {**self.shape_columns, **given}

    def target_params(self) -> list[float]:
        return [parse_size(t, "target size") for t in self.targets]

    def headline_params(self) -> list[float]:
        """The targets the report answers first: those named that are planned, else the one nearest 10B."""
        planned = self.target_params()
        named = [t for t in (parse_size(x) for x in self.headline_targets) if any(abs(t / p - 1) < 1e-9 for p in planned)]
        return named or [min(planned, key=lambda p: abs(math.log(p / 1e10)))]


# Where each field is set from the command line (for errors that name what the user typed).
CLI_OPTIONS = {"targets": "--params", "cluster_sizes": "--gpus", "mixture": "--mix", "unique_tokens": "--unique",
               "seq_len": "--seq-len", "fixed_tokens": "--tokens", "deadline_days": "--days", "budget_usd": "--budget-usd",
               "confidence": "--confidence", "scaling_law": "--law", "price_usd_per_hour": "--price",
               "accelerators": "--gpu", "policies": "--policy",
               "storage_gbps": "--storage-gbps", "restart_minutes": "--restart-minutes", "moe_ffn": "--moe-ffn",
               "shared_experts": "--shared-experts", "dense_layers": "--dense-layers", "shape_columns": "--shape"}


def explain(e, names: dict[str, str] | None = None) -> str:
    """A pydantic ValidationError as plain sentences, one per problem: the option (or field) and
    what is allowed — no pydantic type names, no links."""
    out = []
    for err in e.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        where = (names or {}).get(field, field)
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        got = err.get("input")
        tail = "" if err["type"].startswith("value_error") or isinstance(got, dict) else f" (got {got!r})"
        out.append(f"{where}: {msg}{tail}" if where else f"{msg}{tail}")
    return "; ".join(out)


def load_scenario(path: Path) -> Scenario:
    from pydantic import ValidationError

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise LlmplanError(f"{path}: {e}") from e
    except OSError as e:
        raise LlmplanError(f"cannot read {path}: {e}") from e
    try:
        return Scenario(**data)
    except ValidationError as e:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        msgs = []
        for err in e.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            line = next((i + 1 for i, t in enumerate(lines) if t.strip().startswith((f"{key} ", f"{key}=", f"[{key}]"))), None)
            where = f"{path}, line {line}, key {key!r}" if line else f"{path}, key {key!r}" if key else str(path)
            msgs.append(f"  - {where}: {err['msg']} (got {err.get('input')!r})")
        raise LlmplanError("invalid scenario; nothing was run:\n" + "\n".join(msgs)) from e
