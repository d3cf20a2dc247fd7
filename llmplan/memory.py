"""Memory per accelerator for mixed-precision Adam, and the fewest accelerators that fit.

One unit: bytes, reported in GiB. Vendors' "80 GB" accelerators have 80 GiB (2³⁰ bytes each,
85.9e9 bytes), and DeepSpeed's estimators divide by 2³⁰ too.

Model states per parameter (bytes): 2 bf16 weights, 2 bf16 gradients, 4 fp32 gradients (the
partition DeepSpeed keeps, and Megatron's fp32 main grads; `fp32_grads=False` drops them), 4 fp32
master weights, 8 Adam moments. ZeRO shards them over the data-parallel ranks G:
  stage 0: all replicated                       (16 B/param without fp32 grads, 20 with)
  stage 1: weights + bf16 grads replicated, the rest sharded
  stage 2: weights replicated, the rest sharded  → 2N + 18N/G, DeepSpeed's
           estimate_zero2_model_states_mem_needs (microsoft/DeepSpeed@022f2236,
           deepspeed/runtime/zero/stage_1_and_2.py)
  stage 3: all sharded, one gradient copy (bf16 grads are reduce-scattered into the fp32
           partition), plus the largest layer gathered (4 bytes per its parameter)
           → 18N/G + 4·largest, DeepSpeed's estimate_zero3_model_states_mem_needs
           (microsoft/DeepSpeed@0003660d, deepspeed/runtime/zero/stage3.py)
Without fp32 grads these are the ZeRO paper's 16Ψ, 4Ψ + 12Ψ/G, 2Ψ + 14Ψ/G and 16Ψ/G.

Activations per layer (Korthikanti et al. 2022, Table 2; 16-bit, s = sequence, b = micro-batch,
h = hidden, a = heads, t = tensor parallel): s·b·h·(34 + 5·a·s/h) with no parallelism. The
5·a·s/h term is the stored attention-score matrix; FlashAttention (every modern run) recomputes it
instead, leaving 34, which is also Table 2's "selective recompute" row. With full recompute a
layer keeps only its input, 2·s·b·h, and one layer at a time holds its full working set. The
loss adds a logits buffer s·b·V in fp32. llmplan plans with full recompute (every large run uses
it; a model small enough not to need it fits either way).

Shape from size: h ≈ (128·N/12)^(1/3), layers = h/128, heads = h/128 (N ≈ 12·L·h²).
"""

import numpy as np

GIB = float(2 ** 30)
USABLE_FRACTION = 0.9   # leave room for the framework, fragmentation and communication buffers


def shape_from_params(n):
    h = np.round((128.0 * np.asarray(n, float) / 12.0) ** (1 / 3) / 64.0) * 64.0
    h = np.maximum(h, 64.0)
    layers = np.maximum(np.round(h / 128.0), 1.0)
    heads = np.maximum(h / 128.0, 1.0)
    return h, layers, heads


def largest_layer_params(n, vocab: int):
    """DeepSpeed's 'largest layer': the biggest single module, the embedding V·h or an MLP matrix 4h²."""
    h, _, _ = shape_from_params(n)
    return np.maximum(float(vocab) * h, 4.0 * h * h)


def state_bytes(n, zero_stage: int, fp32_grads: bool = True, largest_layer=0.0):
    """(replicated bytes, bytes sharded over the data-parallel ranks) of the model states."""
    n = np.asarray(n, float)
    w, g16, g32, master, moments = 2.0 * n, 2.0 * n, (4.0 if fp32_grads else 0.0) * n, 4.0 * n, 8.0 * n
    if zero_stage == 0:
        return w + g16 + g32 + master + moments, 0.0 * n
    if zero_stage == 1:
        return w + g16, g32 + master + moments
    if zero_stage == 2:
        return w, g16 + g32 + master + moments
    # ZeRO-3 reduce-scatters the bf16 gradients straight into the sharded fp32 partition, so one
    # gradient copy persists: DeepSpeed's 18 = 2 + 4 + 4 + 8 (16 = 2 + 2 + 4 + 8 without fp32 grads).
    grads = g32 if fp32_grads else g16
    return 4.0 * np.asarray(largest_layer, float) + 0.0 * n, w + grads + master + moments


def activation_bytes_per_layer(s, b, h, a, t: int = 1, sequence_parallel: bool = False, recompute: str = "none",
                               flash_attention: bool = True):
    """Korthikanti et al. 2022, Table 2, in bytes per transformer layer. recompute: 'none',
    'selective' (attention recomputed) or 'full'. FlashAttention drops the 5·a·s/h score term."""
    s, b, h, a, t = (np.asarray(x, float) for x in (s, b, h, a, t))
    sbh = s * b * h
    if recompute == "full":
        return 2.0 * sbh
    scores = 0.0 if (flash_attention or recompute == "selective") else 5.0 * a * s / h
    if sequence_parallel:
        return sbh / t * (34.0 + scores)
    return sbh * (10.0 + 24.0 / t + scores / t)


def activation_bytes(n, seq_len: int, micro_batch: int, vocab: int = 32000, flash_attention: bool = True):
    """Per accelerator with full recompute: every layer's input, one layer's working set, the logits."""
    h, layers, heads = shape_from_params(n)
    s, b = float(seq_len), float(micro_batch)
    kept = layers * activation_bytes_per_layer(s, b, h, heads, recompute="full")
    working = activation_bytes_per_layer(s, b, h, heads, recompute="none", flash_attention=flash_attention)
    logits = s * b * float(vocab) * 4.0
    return kept + working + logits


def memory_plan(n, gpus, memory_bytes, zero_stage: int, seq_len: int, micro_batch: int, fp32_grads: bool = True,
                vocab: int = 32000, flash_attention: bool = True):
    """Per-GPU bytes on `gpus` accelerators and the fewest accelerators that fit (inf if none)."""
    rep, shard = state_bytes(n, zero_stage, fp32_grads, largest_layer_params(n, vocab))
    act = activation_bytes(n, seq_len, micro_batch, vocab, flash_attention)
    gpus = np.asarray(gpus, float)
    per_gpu = rep + shard / gpus + act
    free = USABLE_FRACTION * np.asarray(memory_bytes, float) - rep - act
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(free > 0, np.ceil(np.where(shard > 0, shard / free, 1.0)), np.inf)
    return per_gpu, np.maximum(need, 1.0)


def checkpoint_bytes(n):
    """A resumable checkpoint: bf16 weights + fp32 master weights + two Adam moments = 14 B/param."""
    return 14.0 * np.asarray(n, float)
