"""How a training step's time is predicted: physics with a handful of learned efficiencies.

The physics (llmplan.perf.flops, .comm, .memory) says how much work a step does and where its bytes
go; what it cannot say is how close real kernels and real overlap come to the peaks. So each
step's time on one accelerator is

    compute = linear-layer FLOPs ÷ (peak of the precision × η_gemm(h/t))     [FP8 on linear layers only]
            + logits FLOPs ÷ (BF16 peak × η_gemm(h/t))
            + expert FLOPs ÷ (peak of the precision × η_gemm(min(h, f_e/t)))  [grouped GEMMs: an expert's matrices]
            + t_expert × MoE-layer passes × (local experts E/e − 1)           [per-expert launches of dropless MoE]
            + attention FLOPs (causal: half the full count) ÷ (BF16 peak × η_attn · d/(d + d½))
                                                                      [d: per-head width; the softmax's exponentials]
            + element-wise bytes (elementwise_bytes_per_token: memory.py's tensors) ÷ (HBM bandwidth × η_mem)
    comm    = x_tp·TP + x_ep·EP + x_pp·PP p2p + x_cp·CP + FSDP          (raw times: comm.comm_seconds)
    FSDP    = Σ over layers and micro-batches of [max(0, AG − fwd) + max(0, AG + RS − bwd)
              + x_dp·(the hidden part)]                                  (ZeRO-3; dp_exposed)
    DP      = max(0, RS − last micro-batch's bwd) + max(0, AG − first one's fwd) + x_dp·(hidden)   (ZeRO-0/1/2)
    step    = (compute + comm) × (1 + bubble) + DP + optimizer update bytes ÷ (HBM × η_mem)
    bubble  = (p − 1)/(v·m) for the generic (interleaved 1F1B) schedule; the named schedules of
              DeepSeek-V3's Table 2 (1F1B, ZB-H1, DualPipe) per pipeline_bubble, and DualPipe's
              all-to-all and p2p hidden behind compute slowed by the SMs they take (step_seconds)
    tokens/s per accelerator = global batch tokens ÷ (step × accelerators) × 10^(u_framework + u_accelerator)

η_gemm(x) = η_max(precision) · x/(x + x½): GEMMs on narrow per-accelerator matrices (x = h/t) run
further from peak (a saturating curve). The learned terms (θ, `TERMS`) are fitted in log space on
every shipped per-step row (data/throughput/) by robust non-linear least squares
(scipy.optimize.least_squares, soft-L1), each with a weak prior (`PRIORS`) so that a term the rows
cannot identify stays near its physical value. Framework and accelerator multipliers are random
effects (ridge penalties whose scale τ is re-estimated from the effects, three rounds); τ_framework
is the "new stack" spread every plan carries unless a framework is named or measured. Rows of one
weak-scaling series (same source, model, precision, layout but GPU count) are near-duplicates:
each series weighs as √n rows.

A team's measured rows (`calibrate`) move its stack by the posterior mean of a new stack's offset,
N(0, τ_stack²), with each row Student-t about it; τ_stack and the t's scale and degrees of freedom
are measured with each framework left out (`stack_spreads`), as a new stack meets the model —
the in-sample τ_framework understates that offset and σ is inflated by a heavy tail.

Intervals: p10/p90 = p50 · 10^(±1.2816·√(coefficient variance (delta method) + framework variance
+ accelerator variance + residual variance)).

MFU is reported in Megatron's and torchtitan's convention: 6·N_active plus the full (non-causal)
attention count 12·L·s·h per token, against the peak of the precision; HFU adds recompute.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import stats
from scipy.optimize import least_squares

from llmplan.errors import LlmplanError
from llmplan.perf import comm, flops, memory, shapes

Z90 = 1.2815515655446004
RECOMPUTE = ("none", "selective", "full")
OPTIMIZER_BYTES = 36.0     # per local parameter per update: read fp32 master, m, v, grad (16) + write master, m, v (12) + bf16 copy... (≈ 36)

# term: (prior centre on the natural scale, prior sd on the transformed scale, transform)
# Centres: public GEMM benchmarks reach ~75 % of the BF16 and ~65 % of the FP8 dense peak on
# H100-class parts at large sizes; FlashAttention-2/3 ~50 % of BF16 peak in training (Dao 2023;
# Shah et al. 2024); element-wise kernels ~60 % of HBM bandwidth; half of TP traffic and a fifth of
# DP traffic exposed (Calculon's overlap defaults, Isaev et al. 2023). t_expert: seconds per local expert
# per MoE-layer pass (forward + backward) that a dropless grouped-GEMM layer spends beyond its FLOPs —
# one GEMM launch per local expert in each of fc1/fc2 forward and their data and weight gradients
# (Transformer Engine's GroupedLinear loops over the local experts), plus each expert's FP8 casts:
# ~20 kernels of ~10 µs host and tail time ≈ 0.2 ms. Counted beyond the first local expert: one expert
# a GPU launches what a dense MLP does. attn_half_dim: the per-head width d½ at which the attention
# core's softmax takes as long as its matrix multiplies, so that the core runs at η_attn·d/(d + d½).
# The exponentials run on the special-function units, not the tensor cores: the H100 SXM5 does 989
# TFLOP/s of BF16 matmul but 3.9 T exponentials/s (Shah et al. 2024, FlashAttention-3,
# arXiv:2407.08608 §3.2: at head dimension 128 "exponential can take 50% of the cycle time compared
# to matmul"). Per score element the forward does 4·d GEMM FLOPs (QKᵀ, A·V) and one exponential;
# the backward recomputes the probabilities (one more exponential) beside 10·d FLOPs (S again, dV,
# dP, dQ, dK): 14·d FLOPs per 2 exponentials, d½ = 989/(3.9 · 7) ≈ 36 where the two do not overlap.
PRIORS = {
    "eta_gemm_bf16": (0.75, 1.0, "logit"),
    "eta_gemm_fp8": (0.65, 1.0, "logit"),
    "gemm_half_width": (256.0, 1.0, "log"),
    "eta_attn": (0.5, 1.0, "logit"),
    "attn_half_dim": (36.2, 1.0, "log"),
    "eta_mem": (0.6, 1.0, "logit"),
    "x_tp": (0.5, 1.5, "logit"),
    "x_dp": (0.2, 1.5, "logit"),
    "x_ep": (0.6, 1.5, "logit"),
    "x_pp": (0.5, 1.5, "logit"),
    "x_cp": (0.2, 1.5, "logit"),
    "t_expert": (2e-4, 0.7, "log"),
}
TERMS = tuple(PRIORS)


def _to_natural(z: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for i, (k, (_, _, tr)) in enumerate(PRIORS.items()):
        out[k] = 1.0 / (1.0 + np.exp(-z[i])) if tr == "logit" else np.exp(z[i])
    return out


def _to_z(natural: dict[str, float]) -> np.ndarray:
    z = []
    for k, (_, _, tr) in PRIORS.items():
        v = natural[k]
        z.append(math.log(v / (1 - v)) if tr == "logit" else math.log(v))
    return np.array(z)


PRIOR_Z = _to_z({k: v[0] for k, v in PRIORS.items()})
PRIOR_SD = np.array([v[1] for v in PRIORS.values()])


# -- physics inputs ----------------------------------------------------------------------

LAYOUT_COLUMNS = ("tp", "pp", "vp", "cp", "ep", "dp", "zero_stage", "micro_batch", "recompute")

# Pipeline schedules a run or a plan can name (`pp_schedule`; null = the generic interleaved 1F1B whose
# virtual stages the layout search picks). The three are the rows of DeepSeek-V3's Table 2 (arXiv
# 2412.19437 §3.2.1): plain 1F1B (Harlap et al. 2018; PipeDream-Flush), ZB1P = ZB-H1 (Qi et al. 2023,
# "Zero Bubble Pipeline Parallelism" §3: the backward split into input and weight gradients, W filling
# 1F1B's drain, same activation memory) and DualPipe (bidirectional; two copies of the parameters).
PP_SCHEDULES = ("1f1b", "dualpipe", "zero-bubble")
# DualPipe's all-to-all kernels run on SMs taken from compute: "only 20 SMs are sufficient to fully
# utilize the bandwidths of IB and NVLink" (§3.2.2); "20 out of the 132 SMs available in the H800 GPU"
# (§3.5.1). Compute that overlaps them runs on the other 112.
DUALPIPE_SM_SHARE = 20.0 / 132.0


def pipeline_bubble(pp, vp, m, schedule, fwd_share) -> np.ndarray:
    """Idle time of a pipeline per unit of a stage's busy time m·(F + B), by schedule (DeepSeek-V3
    Table 2, F: a chunk's forward, B: its full backward, W: its weight-gradient part, F&B: an
    overlapped forward-backward pair):
      generic (null) (p − 1)/(v·m)                      Megatron's interleaved 1F1B, v virtual stages
      1f1b           (p − 1)(F + B)            → (p − 1)/m
      zero-bubble    (p − 1)(F + B − 2W)       → (p − 1)(1 − 2f)/m         ZB-H1
      dualpipe       (p/2 − 1)(F&B + B − 3W)   → (p/2 − 1)(2 − 4f)/m       F&B = F + B of compute
    with f = F/(F + B) the forward's share of a layer's compute (⅓; ¼ with full recompute, whose
    backward re-runs the forward) and W = F (a weight gradient is one GEMM per forward GEMM). ZB-H1 at
    f = ⅓ is a third of 1F1B's bubble (Qi et al. 2023); DualPipe at p = 16 is 7·⅔ = 4.7 against 15."""
    pp, vp, m, f = (np.asarray(x, float) for x in (pp, vp, m, fwd_share))
    sched = np.asarray(schedule).astype(str)
    m = np.maximum(m, 1.0)
    generic = (pp - 1.0) / (vp * m)
    plain = (pp - 1.0) / m
    zb = (pp - 1.0) * (1.0 - 2.0 * f) / m
    dual = np.maximum(pp / 2.0 - 1.0, 0.0) * (2.0 - 4.0 * f) / m
    return np.where(sched == "1f1b", plain, np.where(sched == "zero-bubble", zb, np.where(sched == "dualpipe", dual, generic)))


def shape_frame(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """The model shape per row: columns named like shapes.SHAPE_KEYS where present and not null,
    the rest by llmplan.perf.shapes' rule from params / active_params. Published shapes say
    `experts = 0` for a dense model (here 1), and an un-gated MLP (`mlp` gelu or squared_relu: two
    matrices of h × ffn) counts as a SwiGLU one of ⅔ the width (three matrices): same parameters
    and FLOPs."""
    n = frame.height
    col = lambda c: frame[c].cast(pl.Float64).fill_null(float("nan")).to_numpy() if c in frame.columns else np.full(n, np.nan)  # noqa: E731
    overrides = {k: col(k) for k in shapes.SHAPE_KEYS + shapes.OPTIONAL_KEYS + shapes.MLA_KEYS}
    dense = ~(overrides["experts"] > 1)
    overrides["experts"] = np.where(np.isnan(overrides["experts"]), np.nan, np.where(dense, 1.0, overrides["experts"]))
    overrides["top_k"] = np.where(dense & ~np.isnan(overrides["experts"]), 1.0, overrides["top_k"])
    if "mlp" in frame.columns:
        ungated = frame["mlp"].fill_null("swiglu").is_in(["gelu", "squared_relu", "relu"]).to_numpy()
        overrides["ffn"] = np.where(ungated, overrides["ffn"] * 2.0 / 3.0, overrides["ffn"])
        overrides["moe_ffn"] = np.where(ungated, overrides["moe_ffn"] * 2.0 / 3.0, overrides["moe_ffn"])
    params = frame["params"].cast(pl.Float64).to_numpy()
    active = frame["active_params"].cast(pl.Float64).fill_null(frame["params"].cast(pl.Float64)).to_numpy() \
        if "active_params" in frame.columns else params
    return shapes.complete_shape(params, active, overrides)


def raw_times(frame: pl.DataFrame, shape: dict | None = None) -> dict[str, np.ndarray]:
    """Per row (a layout on a cluster): each part of a step's time at efficiency 1 and fully
    exposed communication, in seconds per optimizer step on one accelerator, plus what the learned
    terms act on. Columns: params, active_params, precision, seq_len, global_batch_tokens,
    gpu_count, the layout (LAYOUT_COLUMNS; dp is derived when absent; optional fsdp_group, the ranks
    one ZeRO-3 shard group spans under hybrid sharding, else all of DP) and the accelerator's
    peak_bf16_flops, peak_fp8_flops, hbm_bytes_per_s, nvlink_bytes_per_s, nvlink_domain,
    scaleout_bytes_per_s."""
    shape = shape if shape is not None else shape_frame(frame)
    def f(c, d=None):                      # a missing column or value: d, else NaN (the defaults below)
        fill = d if d is not None else float("nan")
        return frame[c].cast(pl.Float64).fill_null(fill).to_numpy() if c in frame.columns else np.full(frame.height, fill)
    s = f("seq_len")
    B = f("global_batch_tokens")
    gpus = f("gpu_count")
    tp, pp, cp, ep = f("tp", 1.0), f("pp", 1.0), f("cp", 1.0), f("ep", 1.0)
    vp = f("vp", 1.0) if "vp" in frame.columns else np.ones(frame.height)
    mb = f("micro_batch", 1.0)
    zero = f("zero_stage", 1.0) if "zero_stage" in frame.columns else np.ones(frame.height)
    rc = frame["recompute"].fill_null("none").to_numpy().astype(str) if "recompute" in frame.columns else np.full(frame.height, "none")
    dp_fit = np.maximum(np.floor(gpus / (tp * pp * cp)), 1.0)
    dp = np.where(np.isnan(f("dp")), dp_fit, f("dp")) if "dp" in frame.columns else dp_fit
    # Sequences per step bound the data-parallel ranks the batch keeps busy.
    dp = np.minimum(dp, np.maximum(np.floor(B / (s * mb)), 1.0))
    used = tp * pp * cp * dp
    m = np.maximum(B / (s * mb * dp), 1.0)                      # micro-batches per step per pipeline
    fp8 = (frame["precision"].fill_null("bf16") == "fp8").to_numpy()
    peak16 = f("peak_bf16_flops")
    peak8 = np.where(np.isnan(f("peak_fp8_flops")), peak16, f("peak_fp8_flops"))
    peak = np.where(fp8, peak8, peak16)
    hbm = f("hbm_bytes_per_s")
    hbm = np.where(np.isnan(hbm), 2.0e12, hbm)

    fl = flops.flops_per_token(shape, s)
    parts = shapes.param_parts(shape)
    moe = shape["experts"] > 1
    full, sel = rc == "full", rc == "selective"
    gemm_mult = np.where(full, 4.0 / 3.0, 1.0)                  # full recompute repeats every forward
    attn_mult = np.where(full | sel, 4.0 / 3.0, 1.0)            # selective: the attention core's forward
    per_gpu_tokens = B / used
    dense = fl["dense_gemm"] * gemm_mult * per_gpu_tokens / peak
    logits = fl["logits"] * gemm_mult * per_gpu_tokens / peak16
    expert = fl["expert_gemm"] * gemm_mult * per_gpu_tokens / peak
    attn = 0.5 * fl["attention"] * attn_mult * per_gpu_tokens / peak16        # causal: FlashAttention skips half
    mem = elementwise_bytes_per_token(shape, fp8) * gemm_mult * per_gpu_tokens / hbm
    total, active = shapes.params_from_shape(shape)
    local = (active + (total - active) / ep) / (tp * pp)
    opt = OPTIMIZER_BYTES * local / np.where(zero >= 1, dp * cp, 1.0) / hbm

    nv = f("nvlink_bytes_per_s")
    nv = np.where(np.isnan(nv), 300e9, nv)
    so = f("scaleout_bytes_per_s")
    so = np.where(np.isnan(so), 25e9, so)
    dom = f("nvlink_domain", 8.0)
    shard = f("fsdp_group")                 # hybrid sharding's shard group (ranks); missing: all of DP
    c = comm.comm_seconds(shape, s, mb, m, tp, pp, dp, cp, ep, vp, zero, nv, dom, so, shard_group=shard)
    sched = frame["pp_schedule"].fill_null("").to_numpy().astype(str) if "pp_schedule" in frame.columns else np.full(frame.height, "")
    fwd_share = np.where(full, 0.25, 1.0 / 3.0)      # the forward's share of a layer's compute (full recompute re-runs it)
    bubble = pipeline_bubble(pp, vp, m, sched, fwd_share)
    model_fl = flops.model_flops_per_token(shape, s)
    hw_fl = fl["dense_gemm"] * gemm_mult + fl["logits"] * gemm_mult + fl["expert_gemm"] * gemm_mult + fl["attention"] * attn_mult
    return {"dense": dense, "logits": logits, "expert": expert, "attn": attn, "mem": mem, "opt": opt,
            "tp": c["tp"], "dp": c["dp"] + c["fsdp"], "ep": c["ep"], "pp": c["pp"], "cp": c["cp"],
            "zero3": zero == 3, "fsdp_ag_layer": c["fsdp_ag_layer"], "fsdp_rs_layer": c["fsdp_rs_layer"],
            "layer_passes": c["layer_passes"], "dp_rs_step": c["dp_rs_step"], "dp_ag_step": c["dp_ag_step"],
            "fwd_share": fwd_share,
            "bubble": bubble, "dualpipe": (sched == "dualpipe") & (pp > 1), "width": shape["hidden"] / tp,
            "attn_dim": shapes.attention_core_width(shape) / shape["heads"] * np.ones(frame.height), "fp8": fp8, "B": B, "gpus": gpus, "used": used, "dp_used": dp,
            # an expert's GEMMs are h × moe_ffn: the narrower side sets how far from peak they run
            "width_expert": np.where(moe, np.minimum(shape["hidden"], shape["moe_ffn"] / tp), shape["hidden"] / tp),
            "m": m, "peak": peak, "model_flops_per_token": model_fl, "hw_flops_per_token": hw_fl,
            "six_n": 6.0 * active,
            # MoE-layer passes per step on this GPU (full recompute re-runs each forward) × the experts held
            # here beyond one (one local expert launches what a dense MLP does, which η_gemm already carries)
            "expert_passes": parts["moe_layers"] / pp * m * gemm_mult * np.where(moe, np.maximum(shape["experts"] / ep - 1.0, 0.0), 0.0)}


def elementwise_bytes_per_token(shape: dict, fp8=False) -> np.ndarray:
    """HBM bytes of the element-wise work (norms, activation functions, residuals, the MoE
    permutation, the FP8 casts) per token, forward + backward: each layer's stored activations
    written in the forward and read in the backward, 2 × the bytes memory.py counts a token keeps
    (memory.activation_bytes_per_token: per tensor, grouped-query K and V at their width, no dropout
    masks — the Llama-style shapes train without dropout — and, in FP8 training, the linear layers'
    cached inputs at 1 byte; a token routed to k experts is copied k times and each copy runs an
    expert's activation). One count of a layer's tensors for memory and time. Llama 3 8B:
    2 × 32 × (13·h + 6·f) in BF16 (h 4,096, f 14,336), 2 × 32 × (10·h + 5·f) in FP8, where
    Korthikanti's multi-head, dropout count would say 2 × 32 × (18·h + 6·f)."""
    return 2.0 * memory.activation_bytes_per_token(shape, fp8=fp8)


def step_seconds(rt: dict, eta: dict) -> dict[str, np.ndarray]:
    """Seconds per step on one accelerator, by part, for learned terms `eta` (natural scale)."""
    size = rt["width"] / (rt["width"] + eta["gemm_half_width"])
    g = np.where(rt["fp8"], eta["eta_gemm_fp8"], eta["eta_gemm_bf16"]) * size
    g16 = eta["eta_gemm_bf16"] * size
    g_e = np.where(rt["fp8"], eta["eta_gemm_fp8"], eta["eta_gemm_bf16"]) * rt["width_expert"] / (rt["width_expert"] + eta["gemm_half_width"])
    # the attention core at η_attn · d/(d + d½): its softmax's exponentials do not run on the tensor cores
    g_attn = eta["eta_attn"] * rt["attn_dim"] / (rt["attn_dim"] + eta["attn_half_dim"])
    compute = rt["dense"] / g + rt["logits"] / g16 + rt["expert"] / g_e + rt["attn"] / g_attn \
        + rt["mem"] / eta["eta_mem"] + eta["t_expert"] * rt["expert_passes"]
    exposed = {k: eta[f"x_{k}"] * rt[k] for k in ("tp", "ep", "pp", "cp")}
    if "dualpipe" in rt:
        compute, exposed["ep"], exposed["pp"] = dualpipe_overlap(rt, compute, exposed["ep"], exposed["pp"])
    fsdp, per_step = dp_exposed(rt, compute, eta["x_dp"])
    busy = compute + sum(exposed.values()) + fsdp
    step = busy * (1.0 + rt["bubble"]) + per_step + rt["opt"] / eta["eta_mem"]
    return {"compute": compute, **{f"{k}_exposed": v for k, v in exposed.items()}, "dp_exposed": fsdp + per_step,
            "bubble": busy * rt["bubble"], "optimizer": rt["opt"] / eta["eta_mem"], "step": step}


def dualpipe_overlap(rt: dict, compute, ep_exposed, pp_exposed):
    """(compute, exposed all-to-all, exposed p2p) where a row runs DualPipe (rt["dualpipe"]), else
    as given. DualPipe runs one micro-batch's forward beside another's backward so that "both
    all-to-all and PP communication can be fully hidden" (DeepSeek-V3 §3.2.1) — by compute that has
    given DUALPIPE_SM_SHARE of its SMs to the communication kernels. Overlap is computed, not
    learned: compute ÷ (1 − 20/132), and the raw all-to-all and p2p seconds exposed only beyond it
    (all-to-all first)."""
    on = np.asarray(rt["dualpipe"], bool)
    slowed = compute / (1.0 - DUALPIPE_SM_SHARE)
    ep_over = np.maximum(rt["ep"] - slowed, 0.0)
    pp_over = np.maximum(rt["ep"] + rt["pp"] - slowed, 0.0) - ep_over
    return np.where(on, slowed, compute), np.where(on, ep_over, ep_exposed), np.where(on, pp_over, pp_exposed)


def dp_exposed(rt: dict, compute, x_dp) -> tuple[np.ndarray, np.ndarray]:
    """(per micro-batch, per step) exposed seconds of the data-parallel collectives. Overlap is
    computed, not learned: what a collective cannot hide behind the compute running beside it is
    exposed in full, and a learned share x_dp of the hidden part still costs (the collective's
    kernels take SMs and HBM bandwidth from the compute they overlap).
    - ZeRO-3 / FSDP prefetches layer i+1's parameters during layer i: per layer and micro-batch,
      forward max(0, all-gather − forward compute of a layer), backward max(0, all-gather +
      reduce-scatter − backward compute of a layer), × layers of the stage × micro-batches. It sits
      inside each micro-batch, so the pipeline bubble stretches it too.
    - ZeRO-0/1/2 (Megatron's DDP and distributed optimizer, overlap_grad_reduce and
      overlap_param_gather): the bucketed gradient reduce-scatter (ZeRO-0: all-reduce) hides behind
      the last micro-batch's backward only, the parameter all-gather behind the first micro-batch's
      forward: max(0, RS − that backward) + max(0, AG − that forward), once per step, after the
      pipeline has drained.
    The forward is ⅓ of a layer's compute (backward twice the forward), ¼ with full recompute (the
    backward re-runs the forward)."""
    fwd_share = rt["fwd_share"]
    passes = np.maximum(rt["layer_passes"], 1e-9)
    m = np.maximum(rt["m"], 1.0)
    fwd_l, bwd_l = compute * fwd_share / passes, compute * (1.0 - fwd_share) / passes
    ag, rs = rt["fsdp_ag_layer"], rt["fsdp_rs_layer"]
    hide = lambda c, w: (np.maximum(c - w, 0.0), np.minimum(c, w))  # noqa: E731
    (ef, hf), (eb, hb) = hide(ag, fwd_l), hide(ag + rs, bwd_l)
    fsdp = np.where(rt["zero3"], passes * (ef + eb + x_dp * (hf + hb)), 0.0)
    (er, hr), (ea, ha) = hide(rt["dp_rs_step"], compute * (1.0 - fwd_share) / m), hide(rt["dp_ag_step"], compute * fwd_share / m)
    once = np.where(rt["zero3"], 0.0, er + ea + x_dp * (hr + ha))
    return fsdp, once


def log10_rate(rt: dict, eta: dict) -> np.ndarray:
    """log10 tokens/s per accelerator of the cluster (idle accelerators included)."""
    return np.log10(rt["B"] / (step_seconds(rt, eta)["step"] * rt["gpus"]))


# -- the fitted model --------------------------------------------------------------------

@dataclass
class StepPhysics:
    """Learned terms (z: transformed scale), their covariance, random effects and spreads."""
    z: np.ndarray
    cov: np.ndarray
    frameworks: dict[str, tuple[float, float, int]]     # name -> (effect log10, sd, rows)
    accelerators: dict[str, tuple[float, float, int]]
    tau_framework: float
    tau_accelerator: float
    sigma: float
    n_obs: int
    residuals: dict = field(default_factory=dict, repr=False)
    # A new stack as the fit sees it with that stack left out (stack_spreads): its offset's spread τ_stack and
    # the Student-t scale and degrees of freedom of its rows about that offset. row_df 0: not estimated (a
    # model persisted before them), calibrate falls back to the normal mean with τ_framework and σ.
    tau_stack: float = 0.0
    row_scale: float = 0.0
    row_df: float = 0.0

    @property
    def eta(self) -> dict[str, float]:
        return {k: float(v) for k, v in _to_natural(self.z).items()}

    def effects(self, frame: pl.DataFrame, known_framework: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(log10 offset, its variance) per row: the framework's effect where named and known (else
        the new-stack variance τ²), plus the accelerator's (unknown: τ_acc²)."""
        n = frame.height
        off, var = np.zeros(n), np.full(n, self.tau_framework ** 2)
        if known_framework and "framework" in frame.columns:
            fw = frame["framework"].to_list()
            for i, name in enumerate(fw):                 # a handful of distinct names; dict look-ups, not maths
                if name in self.frameworks:
                    off[i], var[i] = self.frameworks[name][0], self.frameworks[name][1] ** 2
        acc = frame["accelerator"].to_list() if "accelerator" in frame.columns else [None] * n
        a_off = np.array([self.accelerators.get(a, (0.0, self.tau_accelerator, 0))[0] for a in acc])
        a_var = np.array([self.accelerators.get(a, (0.0, self.tau_accelerator, 0))[1] ** 2 for a in acc])
        return off + a_off, var + a_var

    def predict(self, frame: pl.DataFrame, rt: dict | None = None, known_framework: bool = True) -> pl.DataFrame:
        """Adds step_seconds_p50, tokens_per_s_per_gpu_p10/p50/p90 (over the cluster), step_mfu_p50,
        step_hfu_p50, and the parts of the step (seconds)."""
        rt = rt if rt is not None else raw_times(frame)
        eta = self.eta
        parts = step_seconds(rt, eta)
        mid = np.log10(rt["B"] / (parts["step"] * rt["gpus"]))
        off, var = self.effects(frame, known_framework)
        mid = mid + off
        J = self._jac(rt)
        coef_var = np.einsum("ij,jk,ik->i", J, self.cov, J)
        hw = Z90 * np.sqrt(coef_var + var + self.sigma ** 2)
        rate = 10 ** mid
        return frame.with_columns(
            pl.Series("step_seconds_p50", rt["B"] / (rate * rt["gpus"])),
            pl.Series("tokens_per_s_per_gpu_p10", 10 ** (mid - hw)), pl.Series("tokens_per_s_per_gpu_p50", rate),
            pl.Series("tokens_per_s_per_gpu_p90", 10 ** (mid + hw)), pl.Series("step_half_width", hw),
            pl.Series("step_mfu_p50", rate * rt["model_flops_per_token"] / rt["peak"]),
            pl.Series("step_hfu_p50", rate * rt["hw_flops_per_token"] / rt["peak"]),
            pl.Series("mfu_6n_p50", rate * rt["six_n"] / rt["peak"]),
            pl.Series("bubble_share", rt["bubble"] / (1.0 + rt["bubble"])),
            *[pl.Series(f"{k}_seconds", v) for k, v in parts.items() if k != "step"])

    def _jac(self, rt: dict) -> np.ndarray:
        base = log10_rate(rt, self.eta)
        cols = []
        for k in range(len(self.z)):
            z = self.z.copy()
            z[k] += 1e-4
            cols.append((log10_rate(rt, _to_natural(z)) - base) / 1e-4)
        return np.stack(cols, axis=1)

    def calibrate(self, frame: pl.DataFrame, name: str) -> "StepPhysics":
        """A team's own stack from its measured rows (tokens_per_s_per_gpu with the per-step
        columns): its framework effect is the posterior mean of a N(0, τ_stack²) offset given the
        rows' residuals, each row Student-t about it (stack_posterior). The t keeps one odd row
        (a configuration the physics misses) from dragging the whole stack; rows of one weak-scaling
        series weigh as √n rows, as in the fit."""
        rt = raw_times(frame)
        acc_off, _ = self.effects(frame.drop("framework") if "framework" in frame.columns else frame, known_framework=False)
        r = np.log10(frame["tokens_per_s_per_gpu"].to_numpy()) - log10_rate(rt, self.eta) - acc_off
        n = len(r)
        if self.row_df > 0:
            mean, sd = stack_posterior(r, series_weights(frame), self.tau_stack, self.row_scale, self.row_df)
            effect, sd = float(mean), float(sd)
        else:                                  # a model persisted before the stack spreads: the normal mean
            k = self.sigma ** 2 / max(self.tau_framework ** 2, 1e-12)
            effect, sd = float(r.sum() / (n + k)), math.sqrt(self.sigma ** 2 / (n + k))
        fw = dict(self.frameworks)
        fw[name] = (effect, sd, n)
        return StepPhysics(self.z, self.cov, fw, self.accelerators, self.tau_framework, self.tau_accelerator, self.sigma,
                           self.n_obs, self.residuals, self.tau_stack, self.row_scale, self.row_df)

    # -- persistence (fits.step_physics rows) -------------------------------------------
    def to_frame(self, run_id: str) -> pl.DataFrame:
        se = np.sqrt(np.diag(self.cov))
        eta = self.eta
        rows = [dict(kind="term", name=k, estimate=self.z[i], natural=eta[k], std_error=float(se[i]), n=self.n_obs)
                for i, k in enumerate(TERMS)]
        rows += [dict(kind="cov", name=f"{a}|{b}", estimate=float(self.cov[i, j]), natural=None, std_error=None, n=None)
                 for i, a in enumerate(TERMS) for j, b in enumerate(TERMS)]
        rows += [dict(kind="framework", name=k, estimate=v[0], natural=10 ** v[0], std_error=v[1], n=v[2])
                 for k, v in self.frameworks.items()]
        rows += [dict(kind="accelerator", name=k, estimate=v[0], natural=10 ** v[0], std_error=v[1], n=v[2])
                 for k, v in self.accelerators.items()]
        rows += [dict(kind="spread", name=k, estimate=v, natural=None, std_error=None, n=None)
                 for k, v in (("tau_framework", self.tau_framework), ("tau_accelerator", self.tau_accelerator),
                              ("sigma", self.sigma), ("tau_stack", self.tau_stack), ("row_scale", self.row_scale),
                              ("row_df", self.row_df))]
        return pl.DataFrame(rows, schema={"kind": pl.Utf8, "name": pl.Utf8, "estimate": pl.Float64, "natural": pl.Float64,
                                          "std_error": pl.Float64, "n": pl.Int64}).with_columns(pl.lit(run_id).alias("pipeline_run_id"))

    @classmethod
    def from_frame(cls, f: pl.DataFrame) -> "StepPhysics":
        term = {r["name"]: r for r in f.filter(pl.col("kind") == "term").iter_rows(named=True)}
        missing = [k for k in TERMS if k not in term]
        if missing:
            raise LlmplanError(f"fits.step_physics was fitted by an older llmplan (no learned term {', '.join(missing)}); "
                               "run the pipeline again to refit the step model.")
        z = np.array([term[k]["estimate"] for k in TERMS])
        covd = {r["name"]: r["estimate"] for r in f.filter(pl.col("kind") == "cov").iter_rows(named=True)}
        cov = np.array([[covd[f"{a}|{b}"] for b in TERMS] for a in TERMS])
        eff = lambda kind: {r["name"]: (r["estimate"], r["std_error"], r["n"]) for r in f.filter(pl.col("kind") == kind).iter_rows(named=True)}  # noqa: E731
        sp = {r["name"]: r["estimate"] for r in f.filter(pl.col("kind") == "spread").iter_rows(named=True)}
        return cls(z, cov, eff("framework"), eff("accelerator"), sp["tau_framework"], sp["tau_accelerator"], sp["sigma"],
                   int(term[TERMS[0]]["n"]), tau_stack=sp.get("tau_stack", 0.0), row_scale=sp.get("row_scale", 0.0),
                   row_df=sp.get("row_df", 0.0))


def series_weights(frame: pl.DataFrame) -> np.ndarray:
    """1/√n for the n rows of a weak-scaling series (same source, model, precision, layout)."""
    keys = [c for c in ("source_group", "model", "precision", "tp", "pp", "cp", "ep", "seq_len") if c in frame.columns]
    if not keys:
        return np.ones(frame.height)
    n = frame.select(pl.len().over(keys).alias("n"))["n"].to_numpy().astype(float)
    return 1.0 / np.sqrt(n)


def fit(frame: pl.DataFrame, rounds: int = 3, start: StepPhysics | None = None,
        stack_spread: bool | None = None) -> StepPhysics:
    """Fit the learned terms and the framework/accelerator effects on per-step rows (columns of
    raw_times plus framework, accelerator, tokens_per_s_per_gpu). `stack_spread` (default: only a
    fit without `start`) also estimates what one measured row of a new stack is worth
    (stack_spreads: a refit per framework); otherwise they are `start`'s."""
    rt = raw_times(frame)
    y = np.log10(frame["tokens_per_s_per_gpu"].to_numpy())
    w = series_weights(frame)
    fws = sorted(set(frame["framework"].fill_null("unknown").to_list()))
    accs = sorted(set(frame["accelerator"].to_list()))
    fi = np.array([fws.index(v) for v in frame["framework"].fill_null("unknown").to_list()])
    ai = np.array([accs.index(v) for v in frame["accelerator"].to_list()])
    nk, nf, na = len(TERMS), len(fws), len(accs)
    sigma, tau_f, tau_a = 0.05, 0.15, 0.08
    x0 = np.concatenate([PRIOR_Z, np.zeros(nf + na)])
    if start is not None:                 # a refit on a subset (the backtests) starts where the full fit ended
        sigma, tau_f, tau_a = start.sigma, start.tau_framework, start.tau_accelerator
        x0 = np.concatenate([start.z, [start.frameworks.get(k, (0.0,))[0] for k in fws],
                             [start.accelerators.get(k, (0.0,))[0] for k in accs]])
        rounds = 1

    def resid(x):
        eta = _to_natural(x[:nk])
        u, a = x[nk:nk + nf], x[nk + nf:]
        r = w * (y - log10_rate(rt, eta) - u[fi] - a[ai])
        prior = sigma * (x[:nk] - PRIOR_Z) / PRIOR_SD
        return np.concatenate([r, prior, sigma * u / tau_f, sigma * a / tau_a])

    for _ in range(rounds):
        sol = least_squares(resid, x0, loss="soft_l1", f_scale=2 * sigma, method="trf", x_scale="jac", max_nfev=400)
        x0 = sol.x
        r = (y - log10_rate(rt, _to_natural(x0[:nk])) - x0[nk:nk + nf][fi] - x0[nk + nf:][ai])
        sigma = max(float(np.sqrt(np.sum(w * r ** 2) / max(np.sum(w) - nk, 1.0))), 0.02)
        u, a = x0[nk:nk + nf], x0[nk + nf:]
        tau_f = max(float(np.sqrt(np.mean(u ** 2))), 0.03) if nf > 1 else 0.15
        tau_a = max(float(np.sqrt(np.mean(a ** 2))), 0.03) if na > 1 else 0.08
    J = sol.jac
    try:
        cov_all = np.linalg.pinv(J.T @ J) * sigma ** 2
    except np.linalg.LinAlgError:
        cov_all = np.eye(len(x0)) * 0.01
    sd = np.sqrt(np.clip(np.diag(cov_all), 0, None))
    counts_f = np.bincount(fi, minlength=nf)
    counts_a = np.bincount(ai, minlength=na)
    model = StepPhysics(
        z=x0[:nk], cov=cov_all[:nk, :nk],
        frameworks={fws[i]: (float(x0[nk + i]), float(sd[nk + i]), int(counts_f[i])) for i in range(nf)},
        accelerators={accs[i]: (float(x0[nk + nf + i]), float(sd[nk + nf + i]), int(counts_a[i])) for i in range(na)},
        tau_framework=tau_f, tau_accelerator=tau_a, sigma=sigma, n_obs=len(y),
        residuals={"y": y, "pred": log10_rate(rt, _to_natural(x0[:nk])) + x0[nk:nk + nf][fi] + x0[nk + nf:][ai]})
    if stack_spread if stack_spread is not None else start is None:
        model.tau_stack, model.row_scale, model.row_df = stack_spreads(frame, model)
    elif start is not None:
        model.tau_stack, model.row_scale, model.row_df = start.tau_stack, start.row_scale, start.row_df
    return model


# -- what one measured row of a new stack is worth ------------------------------------------

def stack_spreads(frame: pl.DataFrame, model: StepPhysics) -> tuple[float, float, float]:
    """(τ_stack, t scale, t degrees of freedom): each framework of `frame` left out in turn, refitted
    without it, and its rows' residuals split into the stack's offset (their median) and the rows'
    scatter about it. In-sample framework effects understate a new stack's offset — the learned
    terms absorb much of each framework's difference (5 frameworks, 12 terms) and the effects are
    shrunk — so the spread is measured out of sample, as a team's stack meets the model. The scatter
    is heavy-tailed (rows the physics misses: MoE dispatch, one odd release), so it is a Student-t
    fitted by maximum likelihood (scipy.stats.t.fit; Lange, Little & Taylor 1989), not σ; τ² is the
    offsets' mean square less their own sampling variance (a median's: π/2 · scale² / n), at least
    τ_framework². Fewer than three frameworks: (τ_framework, σ, 0), i.e. the normal fallback."""
    fw = frame["framework"].fill_null("unknown")
    names = fw.unique().sort().to_list()
    if len(names) < 3:
        return model.tau_framework, model.sigma, 0.0
    y = np.log10(frame["tokens_per_s_per_gpu"].to_numpy())
    centres, noise, within = [], [], []
    for name in names:                    # a handful of frameworks: one refit each, not a loop over rows
        held = (fw == name).to_numpy()
        if (~held).sum() < 10:
            continue
        m = fit(frame.filter(~held), start=model, stack_spread=False)
        test = frame.filter(held)
        off, _ = m.effects(test, known_framework=False)
        r = y[held] - log10_rate(raw_times(test), m.eta) - off
        c = float(np.median(r))
        centres.append(c)
        within.append(r - c)
        noise.append((math.pi / 2) * (1.4826 * float(np.median(np.abs(r - c)))) ** 2 / len(r))
    e = np.concatenate(within)
    df, _, scale = stats.t.fit(e, floc=0.0)
    tau2 = float(np.mean(np.square(centres)) - np.mean(noise))
    return max(math.sqrt(max(tau2, 0.0)), model.tau_framework), float(scale), float(np.clip(df, 1.0, 30.0))


def stack_posterior(r: np.ndarray, w: np.ndarray, tau: float, scale: float, df: float) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd of a stack's offset u given residuals r (last axis: its rows, weights
    w): u ~ N(0, τ²), r_i − u ~ Student-t(df, scale), each row's log-likelihood × w_i. By quadrature
    on a grid of u (±1 in log10, i.e. a factor 10 either way); leading axes of r are independent
    sets of rows (the backtest's 'each row in turn')."""
    r = np.asarray(r, float)
    w = np.broadcast_to(np.asarray(w, float), r.shape)
    u = np.linspace(-1.0, 1.0, 4001)
    lp = -0.5 * (u / tau) ** 2 + np.einsum("...n,...nu->...u", w, stats.t.logpdf((r[..., None] - u) / scale, df))
    p = np.exp(lp - lp.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    mean = (p * u).sum(axis=-1)
    return mean, np.sqrt(np.clip((p * u ** 2).sum(axis=-1) - mean ** 2, 0.0, None))
