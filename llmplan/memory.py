"""Memory per accelerator for mixed-precision Adam, and the fewest accelerators that fit.

States: 16 bytes/param (2 bf16 weights + 2 grads + 4 fp32 master + 8 Adam moments), 18 with
fp32 grads. ZeRO-1 shards the 12 optimizer bytes over data-parallel ranks, ZeRO-2 also the
grads, ZeRO-3 also the weights. Activations (Korthikanti et al. 2022), 16-bit, per layer:
s·b·h·(34 + 5·a·s/h) without recompute; ≈ 2·s·b·h with full recompute, which llmplan assumes
(every large run uses it) plus one layer's full working set.
Shape from size: h ≈ (128·N/12)^(1/3), layers = h/128, heads = h/128 (N ≈ 12·L·h²).
"""

import numpy as np

USABLE_FRACTION = 0.9   # leave room for the framework, fragmentation and communication buffers


def shape_from_params(n):
    h = np.round((128.0 * np.asarray(n, float) / 12.0) ** (1 / 3) / 64.0) * 64.0
    h = np.maximum(h, 64.0)
    layers = np.maximum(np.round(h / 128.0), 1.0)
    heads = np.maximum(h / 128.0, 1.0)
    return h, layers, heads


def state_bytes(n, zero_stage: int, fp32_grads: bool = False):
    """(replicated bytes, sharded bytes) per model for the ZeRO stage."""
    n = np.asarray(n, float)
    w, g, o = 2.0 * n, (4.0 if fp32_grads else 2.0) * n, 12.0 * n
    if zero_stage == 0:
        return w + g + o, 0.0 * n
    if zero_stage == 1:
        return w + g, o
    if zero_stage == 2:
        return w, g + o
    return 0.0 * n, w + g + o


def activation_bytes(n, seq_len: int, micro_batch: int):
    h, layers, heads = shape_from_params(n)
    s, b = float(seq_len), float(micro_batch)
    one_layer = s * b * h * (34.0 + 5.0 * heads * s / h)
    return layers * 2.0 * s * b * h + one_layer


def memory_plan(n, gpus, memory_bytes, zero_stage: int, seq_len: int, micro_batch: int, fp32_grads: bool = False):
    """Per-GPU bytes on `gpus` accelerators and the fewest accelerators that fit (inf if none)."""
    rep, shard = state_bytes(n, zero_stage, fp32_grads)
    act = activation_bytes(n, seq_len, micro_batch)
    gpus = np.asarray(gpus, float)
    per_gpu = rep + shard / gpus + act
    free = USABLE_FRACTION * np.asarray(memory_bytes, float) - rep - act
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(free > 0, np.ceil(np.where(shard > 0, shard / free, 1.0)), np.inf)
    return per_gpu, np.maximum(need, 1.0)


def checkpoint_bytes(n):
    """A resumable checkpoint: bf16 weights + fp32 master weights + two Adam moments = 14 B/param."""
    return 14.0 * np.asarray(n, float)
