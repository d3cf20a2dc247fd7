"""Bytes per GPU for a parallel layout: model states, activations and the logits buffer.

Model states per parameter (mixed-precision Adam; Rajbhandari et al. 2020, §3.1, K = 12):
bf16 weights 2, gradients 4 (Megatron's fp32 main grads; 2 in bf16 with fp32_grads=False),
optimizer 12 (fp32 master weights 4 + two Adam moments 8). Sharding over the data-parallel
ranks that hold the same parameters (d·c for dense ones, the expert-DP group d·c/e for experts):
  zero 0: nothing sharded                     18 (16) B/param — the ZeRO paper's 16Ψ
  zero 1: Megatron's distributed optimizer: weights + grads replicated, the 12 sharded
                                              6 + 12/N_d (4Ψ + 12Ψ/N_d in the paper)
  zero 2: weights replicated, grads + the 12 sharded (2Ψ + 14Ψ/N_d)
  zero 3 (FSDP / ZeRO-3): all sharded (16Ψ/N_d), plus the gathered unit in flight: FSDP wraps each
          transformer block (torchtitan), so one block's bf16 weights and bf16 grads, 4 B/param
          of its parameters (DeepSpeed's estimate_zero3_model_states_mem_needs uses 4·largest layer).
Which parameters a GPU holds: dense ones (embeddings, attention, dense and shared-expert MLPs,
router) split over t·p; routed experts over t·e·p (experts use the dense TP as expert-TP,
Megatron-Core's default before expert_tensor_parallel_size), their states sharded over the
expert-DP group d·c/e — once: the e that splits the experts is not also in their DP divisor.
The first pipeline stage holds the input embedding (V·h/t) and the last the output layer; with
p = 1 one GPU holds both. Layers are split evenly (L/p per stage).

Activations (Korthikanti et al. 2022, Table 2, tensor + sequence parallel, 16-bit): per layer
s·b·h·34/t, plus 5·a·s²·b/t for the attention scores unless FlashAttention (or selective
recompute) drops them; with full recompute a layer keeps only its input, 2·s·b·h/t, and one
layer's full working set is live at a time. Context parallelism divides s by c in all of them.
The 34 splits into attention and norms 15 and the 4h GeLU MLP 19 = 3 (its input and dropout mask)
+ 16 (GeLU input and output, 2 bytes × 4h each). A SwiGLU MLP of width f keeps its gate, up and
product instead, 6·f/h, so a layer keeps (18 + 6·f/h)·s·b·h — exactly 34 at f = 8h/3 (the SwiGLU
width with a 4h MLP's parameters), 39 for Llama 3's f = 3.5h. An MoE layer keeps, per token, 18·h
and for each of its k routed copies (and each shared expert) the dispatched input 2h, the SwiGLU
6·moe_ffn and the expert output 2h for the weighted combine: (18·h + k·(4h + 6·moe_ffn))·s·b.
Pipelining (1F1B, Narayanan et al. 2021): the first stage holds p micro-batches of its L/p
layers, L layers' worth; the interleaved schedule ×(1 + (p−1)/(p·v)) (Korthikanti et al. 2022,
§4.2.3). The last stage holds one micro-batch of its L/p layers plus the fp32 logits,
s·b·V·4/(t·c) with the real vocabulary.
`total` is the larger of the first and the last stage.
"""

import numpy as np

from llmplan.perf.comm import common_shape, local_params
from llmplan.perf.shapes import param_parts

GIB = float(2 ** 30)
WEIGHT, OPTIMIZER = 2.0, 12.0


def state_bytes_per_param(zero, fp32_grads=True):
    """(replicated, sharded) bytes per parameter for ZeRO stage `zero` (0–3; 1 = distributed optimizer)."""
    zero = np.asarray(zero)
    g = 4.0 if fp32_grads else 2.0
    rep = np.select([zero == 0, zero == 1, zero == 2], [WEIGHT + g + OPTIMIZER, WEIGHT + g, WEIGHT], 0.0)
    shard = WEIGHT + g + OPTIMIZER - rep
    return rep, shard


def _activation_per_layer(s, b, h, heads, tp, ffn, moe_fraction, k_eff, moe_ffn, flash):
    """Bytes one layer keeps without recompute (s already ÷ c), averaged over dense and MoE layers."""
    dense = s * b * (18.0 * h + 6.0 * ffn)
    moe = s * b * (18.0 * h + k_eff * (4.0 * h + 6.0 * moe_ffn))
    scores = np.where(flash, 0.0, 5.0 * heads * s * s * b)
    return ((1.0 - moe_fraction) * dense + moe_fraction * moe + scores) / tp


def layout_bytes(shape: dict, seq_len, micro_batch, tp, pp, vp, dp, cp, ep, zero, recompute,
                 fp32_grads=True, flash_attention=True) -> dict:
    """Per-GPU bytes: states, activations (first stage), logits (last stage) and total (the larger
    stage's sum). Broadcasts over rows × candidate layouts. See the module docstring."""
    f = lambda x: np.asarray(x, float)  # noqa: E731
    tp, pp, vp, dp, cp, ep = f(tp), f(pp), f(vp), f(dp), f(cp), f(ep)
    zero, rc = np.asarray(zero), np.asarray(recompute)
    h, L, V = f(shape["hidden"]), f(shape["layers"]), f(shape["vocab"])
    parts = param_parts(shape)

    dense, expert = local_params(shape, tp, pp, ep)
    # local_params spreads the embeddings evenly over stages; put one V·h on each end stage instead.
    emb_even = parts["embedding"] / (tp * pp)
    end_stage = np.where(pp > 1, 0.5 * parts["embedding"], parts["embedding"]) / tp
    dense_stage = dense - emb_even + end_stage
    rep, shard = state_bytes_per_param(zero, fp32_grads)
    n_dp, n_edp = dp * cp, np.maximum(dp * cp / ep, 1.0)
    block = (parts["attention"] + parts["dense_mlp"] + parts["expert_total"] - parts["routed_total"]) / (L * tp) \
        + parts["routed_total"] / np.maximum(parts["moe_layers"], 1.0) * (parts["moe_layers"] > 0) / (tp * ep)
    gathered = np.where(zero == 3, 4.0 * block, 0.0)
    states = dense_stage * (rep + shard / n_dp) + expert * (rep + shard / n_edp) + gathered

    s_local, b = f(seq_len) / cp, f(micro_batch)
    moe_fraction = parts["moe_layers"] / L
    k_eff = f(shape["top_k"]) + f(shape.get("shared_experts", 0.0))
    working = _activation_per_layer(s_local, b, h, f(shape["heads"]), tp, f(shape["ffn"]), moe_fraction, k_eff,
                                    f(shape["moe_ffn"]), bool(flash_attention) | (rc == "selective"))
    kept = np.where(rc == "full", 2.0 * s_local * b * h / tp, working)
    extra = np.where(rc == "full", working, 0.0)
    interleave = np.where(vp > 1, 1.0 + (pp - 1.0) / (pp * vp), 1.0)
    first_act = L * kept * interleave + extra
    last_act = (L / pp) * kept + extra
    logits = s_local * b * V * 4.0 / tp

    first = states + first_act + np.where(pp > 1, 0.0, logits)
    last = states + last_act + logits
    return common_shape({"states": states, "activations": first_act, "logits": logits,
                         "total": np.maximum(first, last)})
