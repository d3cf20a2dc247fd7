"""FLOPs per token of a training step (forward + backward), from the shape, per part.

A matrix multiply of an m×k by a k×n matrix costs 2·m·k·n FLOPs; the backward pass computes the
input and the weight gradients, twice the forward's FLOPs, so forward + backward = 3 × forward
= 6 FLOPs per parameter per token for every linear layer (Kaplan et al. 2020; Narayanan et al.
2021, §5.1, whose 96·B·s·L·h²(1 + s/6h + V/16Lh) is this count for a GPT with 4h MLP and full
recompute). Per token, for the whole model:
- dense_gemm: 6 × (attention projections with grouped KV heads + the dense layers' SwiGLU MLPs);
- expert_gemm: 6 × (top_k routed + shared experts' MLPs + the router h·E) in the MoE layers;
- logits: 6·V·h (the output layer; the input embedding is a lookup, no FLOPs);
- attention: the core, QKᵀ and A·V, 2 × 2·s·(heads·head_dim) forward per layer, 12·L·s·h_q forward
  + backward, counted WITHOUT the causal mask (the full square), which is the convention of
  Megatron-LM's and torchtitan's MFU (and Narayanan's s/6h term); under multi-head latent attention
  QKᵀ runs over the query/key width and A·V over the value width (shapes.attention_core_width);
  FlashAttention's causal kernels
  skip the upper triangle, about half, which `model_flops_per_token(causal=True)` gives.
Hardware FLOPs add what recomputation re-runs: full recompute one more forward of each
transformer layer (+1/3 of its GEMMs and attention; the output layer is not recomputed, as in
Narayanan's formula), selective recompute (Korthikanti et al. 2022) the attention core's forward
only (+1/3 of attention). MFU counts model FLOPs, HFU hardware FLOPs (Chowdhery et al. 2022, app. B).
"""

import numpy as np

from llmplan.perf.comm import common_shape
from llmplan.perf.shapes import attention_core_width, param_parts

RECOMPUTE = ("none", "selective", "full")


def flops_per_token(shape: dict, seq_len) -> dict:
    """Forward + backward FLOPs per token: dense_gemm, expert_gemm, logits, attention (full square),
    total. Broadcasts over the shape's arrays and seq_len."""
    p = param_parts(shape)
    L = np.asarray(shape["layers"], float)
    h_q = attention_core_width(shape)
    out = {
        "dense_gemm": 6.0 * (p["attention"] + p["dense_mlp"]),
        "expert_gemm": 6.0 * p["expert_active"],
        "logits": 6.0 * np.asarray(shape["vocab"], float) * np.asarray(shape["hidden"], float),
        "attention": 12.0 * L * np.asarray(seq_len, float) * h_q,
    }
    out["total"] = out["dense_gemm"] + out["expert_gemm"] + out["logits"] + out["attention"]
    return common_shape(out)


def model_flops_per_token(shape: dict, seq_len, causal: bool = False):
    """The MFU numerator per token: all of flops_per_token, the attention term halved if `causal`."""
    f = flops_per_token(shape, seq_len)
    return f["total"] - (0.5 * f["attention"] if causal else 0.0)


def hardware_flops_per_token(shape: dict, seq_len, recompute="none"):
    """FLOPs the GPU executes per token: model FLOPs (full attention square) plus recomputation.
    recompute ('none' | 'selective' | 'full', or an array of them) broadcasts."""
    rc = np.asarray(recompute)
    if not np.all(np.isin(rc, RECOMPUTE)):
        raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE)}, not {sorted(set(np.ravel(rc)) - set(RECOMPUTE))}")
    f = flops_per_token(shape, seq_len)
    layer_fwd = (f["dense_gemm"] + f["expert_gemm"] + f["attention"]) / 3.0
    extra = np.where(rc == "full", layer_fwd, np.where(rc == "selective", f["attention"] / 3.0, 0.0))
    return f["total"] + extra


def six_n_flops_per_token(active_params):
    """6·N per token (Kaplan et al. 2020), N the active parameters: the rule without attention."""
    return 6.0 * np.asarray(active_params, float)
