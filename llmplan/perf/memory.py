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

Activations (Korthikanti et al. 2022, §4.1 and Table 2, tensor + sequence parallel, 16-bit): per
layer s·b·h·(34 + 5·a·s/h)/t, where the 34 is attention 11 (QKV input 2, Q and K 4, V 2, projection
input 2, dropout mask 1), two LayerNorm inputs 4, and the 4h GeLU MLP 19 (input 2, GeLU input and
output 16, dropout mask 1); the 5·a·s/h are the attention scores, which FlashAttention (or selective
recompute) does not keep. Written per tensor, so that it holds for the shapes llmplan plans:
    norms 4h + QKV input 2h + Q 2·a·d + attention output 2·a·d + K and V 4·g·d + MLP input 2h
    + dropout masks 2h (only with dropout) + the MLP (SwiGLU gate, up and product 6·f)
which is Korthikanti's 34 exactly for multi-head attention (g·d = a·d = h) with dropout and f = 8h/3
(the SwiGLU width with a 4h MLP's parameters). Two differences matter for the public shapes: grouped-
query attention keeps K and V at g·d, not h (Llama 3 405B: 1,024 of 16,384), and the Llama, Mistral,
Qwen and DeepSeek configurations train without dropout (attention_dropout 0.0, no hidden dropout in
their config.json), so no masks: Llama 3 405B keeps 12h + 4·g·d + 6f = 31.75·h per token and layer,
not the 37.5·h of Korthikanti's 34 with SwiGLU's 6f/h. Under TP everything is divided by t (sequence
parallelism shards what the norms and dropouts keep), except K and V when t exceeds the KV heads
(Megatron replicates a KV head over t/g ranks: one head per rank). An MoE layer keeps, per token,
the same attention and norms, the MLP input, for each of its k routed copies and each shared
expert the SwiGLU 6·moe_ffn, and for each routed copy the dispatched input 2h. The expert output is
not kept: Megatron-Core multiplies the routing probability inside the expert's activation
(NVIDIA/Megatron-LM@329baaca5202 megatron/core/transformer/moe/experts.py,
activation_func_with_probs), so the combine is a plain sum whose backward needs no expert output.
With TP the dispatched input is not divided by t: Megatron-Core's token
dispatcher all-gathers the dispatched tokens over the TP group (NVIDIA/Megatron-LM@0014f13713bf
megatron/core/transformer/moe/token_dispatcher.py, MoEAlltoAllTokenDispatcher: all-to-all over
EP, then gather_from_sequence_parallel_region over TP), and each rank runs its 1/t of every
expert's width on all of them: s·b·k·2h per rank, only the 6·moe_ffn divided by t.
FP8 training keeps the inputs of its linear layers, which the weight-gradient GEMM reads, in FP8:
1 byte, not 2, for the QKV, projection, fc1 and fc2 inputs and the dispatched expert copies
(DeepSeek-V3 report, arXiv 2412.19437 §3.3.3 "Low-Precision Storage": "we cache the activations in
FP8 for the backward pass of the Linear operator", also the dispatched tokens); norms, Q, K, V, the
gate and up outputs and the expert outputs stay 16-bit.
Selective recompute is Megatron-Core's (TransformerConfig.recompute_granularity "selective" with
recompute_modules core_attn, layernorm and moe_act, NVIDIA/Megatron-LM
megatron/core/transformer/transformer_config.py; layernorm and moe_act "use output-discarding
checkpointing"): besides the attention scores (Korthikanti's selective recompute, which
FlashAttention already drops), the norms' outputs (the QKV and fc1 inputs, recomputed from the
norms' inputs) and the experts' SwiGLU products (their fc2 inputs) are not kept; these are
element-wise and cost no GEMM. The dense MLP has no such module (its "mlp" recomputes the GEMMs
too), so a dense layer keeps its product. With full recompute a layer keeps only its input, 2·s·b·h/t, and one layer's full working
set is live at a time. Context parallelism divides s by c in all of them.
Pipelining: what the first stage holds is its layers' activations for every micro-batch whose
forward has run and whose backward has not. 1F1B (Narayanan et al. 2021 §2.2.1): min(p, m) micro-
batches of its L/p layers, L layers' worth when m ≥ p. The interleaved schedule with v chunks of
L/(p·v) layers (Narayanan et al. 2021 §2.2.2; NVIDIA/Megatron-LM@4dabc6238579
megatron/core/pipeline_parallel/schedules.py, forward_backward_pipelining_with_interleaving): rank 0
runs 2(p−1) + (v−1)·p warm-up chunk forwards and one more before its first backward, so v·p + p − 1
chunks are in flight, L·(1 + (p−1)/(p·v)) layers (Korthikanti et al. 2022 §4.2.3) — but never more
than the m·v chunks of the step, and when m = p Megatron runs every forward first (all_warmup):
m·v chunks, exactly L layers. `n_micro` (m) None keeps the m > p case. The last stage holds one
micro-batch of its L/p layers plus the fp32 logits, s·b·V·4/(t·c) with the real vocabulary.
`total` is the larger of the first and the last stage.
"""

import numpy as np

from llmplan.perf.comm import common_shape, local_params
from llmplan.perf.shapes import head_dim, param_parts

GIB = float(2 ** 30)
WEIGHT, OPTIMIZER = 2.0, 12.0


def state_bytes_per_param(zero, fp32_grads=True):
    """(replicated, sharded) bytes per parameter for ZeRO stage `zero` (0–3; 1 = distributed optimizer)."""
    zero = np.asarray(zero)
    g = 4.0 if fp32_grads else 2.0
    rep = np.select([zero == 0, zero == 1, zero == 2], [WEIGHT + g + OPTIMIZER, WEIGHT + g, WEIGHT], 0.0)
    shard = WEIGHT + g + OPTIMIZER - rep
    return rep, shard


def _activation_per_layer(s, b, h, heads, kv_heads, hd, tp, ffn, moe_fraction, k_eff, moe_ffn, flash, dropout=False,
                          routed=None, fp8=False, selective=False):
    """Bytes one layer keeps on one TP rank without recompute (s already ÷ c), averaged over dense
    and MoE layers (module docstring: Korthikanti's 34 written per tensor). `k_eff` experts per token
    (routed + shared) keep their SwiGLU; the `routed` (k, default k_eff) also their input."""
    routed = k_eff if routed is None else routed
    g = np.where(np.asarray(fp8, bool), 1.0, 2.0)        # bytes of a cached linear-layer input (FP8 training: 1)
    keep = np.where(np.asarray(selective, bool), 0.0, 1.0)   # norm outputs, expert products (selective: recomputed)
    attn = 4.0 * h + keep * g * h + 2.0 * heads * hd + g * heads * hd + 2.0 * h * float(dropout)   # norms, QKV in, Q, proj in
    kv = 4.0 * kv_heads * hd                                                         # K and V (replicated when t > g)
    dense = keep * g * h + 4.0 * ffn + g * ffn                                       # fc1 input, gate and up, fc2 input
    moe = keep * g * h + k_eff * (4.0 * moe_ffn + keep * g * moe_ffn)
    scores = np.where(flash, 0.0, 5.0 * heads * s * s * b)
    per_rank = s * b * (attn + (1.0 - moe_fraction) * dense + moe_fraction * moe) + scores
    # The routed copies' dispatched inputs are whole on every TP rank: Megatron-Core's
    # dispatcher all-gathers the tokens over the TP group after the all-to-all (each rank computes its
    # 1/t of the expert width on all of them), so they are not divided by t.
    copies = s * b * moe_fraction * routed * g * h
    return per_rank / tp + copies + s * b * kv / np.minimum(tp, kv_heads)


def activation_bytes_per_token(shape: dict, fp8=False, dropout=False):
    """Bytes of one token's stored activations, summed over the model's layers, on one GPU without
    parallelism or recompute and with FlashAttention (no scores kept): the per-tensor count of the
    module docstring at s = b = t = c = 1 — Llama 3 8B keeps 13·h + 6·f = 34·h per layer in BF16,
    10·h + 5·f in FP8. The step physics prices its element-wise traffic by this same count
    (llmplan.perf.model.elementwise_bytes_per_token), so memory and time agree on what a layer
    writes. `fp8` (per row) broadcasts with the shape's arrays."""
    f = lambda x: np.asarray(x, float)  # noqa: E731
    parts = param_parts(shape)
    L = f(shape["layers"])
    kv_heads = f(shape["kv_heads"]) if "kv_heads" in shape else f(shape["heads"])
    per_layer = _activation_per_layer(1.0, 1.0, f(shape["hidden"]), f(shape["heads"]), kv_heads, f(head_dim(shape)), 1.0,
                                      f(shape["ffn"]), parts["moe_layers"] / L,
                                      f(shape["top_k"]) + f(shape.get("shared_experts", 0.0)), f(shape["moe_ffn"]), True,
                                      dropout, routed=f(shape["top_k"]), fp8=fp8)
    return L * per_layer


def first_stage_layers(layers, pp, vp, n_micro=None):
    """Layer activations of one micro-batch the first pipeline stage holds at its peak (module
    docstring): 1F1B min(p, m)·L/p; interleaved min(v·p + p − 1, m·v) chunks of L/(p·v), m·v when m = p."""
    L, p, v = (np.asarray(x, float) for x in (layers, pp, vp))
    m = np.full(np.broadcast_shapes(L.shape, p.shape, v.shape), np.inf) if n_micro is None else np.asarray(n_micro, float)
    plain = np.minimum(p, m) * L / p
    chunks = np.where(np.abs(m - p) < 1e-6, m * v, np.minimum(v * p + p - 1.0, m * v))
    return np.where(v > 1, chunks * L / (p * v), plain)


def layout_bytes(shape: dict, seq_len, micro_batch, tp, pp, vp, dp, cp, ep, zero, recompute,
                 fp32_grads=True, flash_attention=True, n_micro=None, dropout=False, fp8=False) -> dict:
    """Per-GPU bytes: states, activations (first stage), logits (last stage) and total (the larger
    stage's sum). Broadcasts over rows × candidate layouts. `n_micro`: micro-batches per step (None:
    more than the stages); `dropout`: keep dropout masks (Korthikanti's GPT; not the Llama-style
    shapes); `fp8` (per row): FP8 training caches the linear layers' inputs in FP8. See the module
    docstring."""
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
    heads = f(shape["heads"])
    kv_heads = f(shape["kv_heads"]) if "kv_heads" in shape else heads
    working = _activation_per_layer(s_local, b, h, heads, kv_heads, f(head_dim(shape)), tp, f(shape["ffn"]), moe_fraction,
                                    k_eff, f(shape["moe_ffn"]), bool(flash_attention) | (rc == "selective"), dropout,
                                    routed=f(shape["top_k"]), fp8=fp8, selective=rc == "selective")
    kept = np.where(rc == "full", 2.0 * s_local * b * h / tp, working)
    extra = np.where(rc == "full", working, 0.0)
    first_act = first_stage_layers(L, pp, vp, n_micro) * kept + extra
    last_act = (L / pp) * kept + extra
    logits = s_local * b * V * 4.0 / tp

    first = states + first_act + np.where(pp > 1, 0.0, logits)
    last = states + last_act + logits
    return common_shape({"states": states, "activations": first_act, "logits": logits,
                         "total": np.maximum(first, last)})
