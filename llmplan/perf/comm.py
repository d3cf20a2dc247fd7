"""Communication per optimizer step per GPU, per parallel dimension, before any overlap.

Collective times follow the NCCL tests' bandwidth definitions (NVIDIA/nccl-tests, doc/PERFORMANCE.md):
a collective on a buffer of S bytes over n ranks takes t = S·F/busbw, with the "bus bandwidth"
factor F the bytes each rank must move per buffer byte on a ring: all-reduce 2(n−1)/n,
all-gather and reduce-scatter (n−1)/n (S the full, gathered buffer), all-to-all (n−1)/n;
point-to-point sends S once. `bytes_per_s` is the per-GPU bus bandwidth in one direction (NVLink
on H100: 450 GB/s of its 900 GB/s bidirectional; a 400 Gb/s NIC: 50 GB/s), before the efficiency
that the step model learns.

Per dimension (layout TP t · PP p · DP d · CP c · EP e, v virtual stages, micro-batch b of
sequences of s tokens, m micro-batches per step; bf16 activations and weights, 2 bytes):
- tp: Megatron's tensor + sequence parallelism (Korthikanti et al. 2022, §4.2.2): per layer 2
  all-gathers + 2 reduce-scatters forward and the same backward, each of the b·(s/c)·h·2-byte
  activation; over the L/p layers of a stage and the m micro-batches; full recompute repeats the
  forward's 4. NVLink when t fits in one NVLink domain, else the NIC.
- pp: point-to-point, one activation forward and one gradient backward per micro-batch and per
  virtual stage (×v, Narayanan et al. 2021 §2.2.2), each b·(s/c)·h·2/t bytes (Megatron's scatter/
  gather of the sequence-parallel shard). NVLink if t·p fits in a domain, else the NIC.
- dp: the distributed optimizer / ZeRO-1 and -2 (Rajbhandari et al. 2020; Megatron-LM's
  distributed optimizer): reduce-scatter of the gradients (grad_bytes per parameter: 4 with fp32
  reduction, 2 in bf16) and all-gather of the updated bf16 parameters, once per step, of the
  parameters local to a TP×PP rank, over the d·c ranks that share them; expert parameters
  (split over e) over the expert-data-parallel group of d·c/e ranks (experts use the dense TP
  group as their expert-TP, Megatron-Core's default before expert_tensor_parallel_size). ZeRO-0
  all-reduces the gradients instead; ZeRO-3 only reduce-scatters them (the parameters are
  gathered per micro-batch, the fsdp term). NVLink if t·d·c fits in a domain, else the NIC.
- fsdp (ZeRO-3 / FSDP): all-gather of the bf16 parameters in each micro-batch's forward and again
  in its backward: 2 × (n−1)/n × 2 bytes × local parameters × m.
- ep: token dispatch and combine all-to-alls (Lepikhin et al. 2020; Megatron-Core's alltoall
  dispatcher), twice forward and twice backward per MoE layer of the stage and micro-batch, of
  the b·(s/(c·t))·h·k·2 bytes a rank routes (its sequence-parallel share, k copies of each
  token). NVLink if e·t fits in a domain, else the NIC.
- cp: ring attention (Megatron-Core context parallelism; Liu et al. 2023): each rank passes its K
  and V chunk around the ring, 2·b·s·(kv_heads·head_dim/t)·2·(c−1)/c bytes per layer forward and
  twice that backward (K and V again plus their gradients); with full recompute one more
  forward. NVLink if t·c fits in a domain, else the NIC.
Returned: seconds per dimension and `<dim>_bytes`, the bytes each GPU puts on the wire per step.
"""

import numpy as np

from llmplan.perf.shapes import head_dim, param_parts

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p")
BF16 = 2.0


def wire_factor(kind, n):
    """Bytes on the wire per rank per buffer byte (the NCCL tests' busbw/algbw factor); 0 for n = 1."""
    n = np.asarray(n, float)
    frac = np.where(n > 1, (n - 1.0) / np.maximum(n, 1.0), 0.0)
    if kind == "all_reduce":
        return 2.0 * frac
    if kind in ("all_gather", "reduce_scatter", "all_to_all"):
        return frac
    if kind == "p2p":
        return np.where(n > 1, 1.0, 0.0)
    raise ValueError(f"collective kind must be one of {', '.join(COLLECTIVES)}, not {kind!r}")


def collective_seconds(kind, buffer_bytes, n, bytes_per_s):
    """Seconds for one collective on a `buffer_bytes` buffer (the full buffer: the gathered output of
    an all-gather, the input of a reduce-scatter) over n ranks at bus bandwidth `bytes_per_s`."""
    return wire_factor(kind, n) * np.asarray(buffer_bytes, float) / np.asarray(bytes_per_s, float)


def _link(fits, nvlink_bytes_per_s, scaleout_bytes_per_s):
    return np.where(fits, np.asarray(nvlink_bytes_per_s, float), np.asarray(scaleout_bytes_per_s, float))


def local_params(shape: dict, tp, pp, ep):
    """(dense, expert) parameters held by one GPU (before ZeRO sharding): dense ones (embeddings,
    attention, dense MLPs, shared experts, router) split over t·p, routed experts over t·e·p."""
    parts = param_parts(shape)
    tp, pp, ep = (np.asarray(x, float) for x in (tp, pp, ep))
    total = parts["embedding"] + parts["attention"] + parts["dense_mlp"] + parts["expert_total"]
    dense = (total - parts["routed_total"]) / (tp * pp)
    expert = parts["routed_total"] / (tp * ep * pp)
    return dense, expert


def comm_seconds(shape: dict, seq_len, micro_batch, n_micro, tp, pp, dp, cp, ep, vp, zero,
                 nvlink_bytes_per_s, nvlink_domain, scaleout_bytes_per_s, grad_bytes=4.0,
                 recompute="none") -> dict:
    """Per optimizer step per GPU, before overlap: seconds for tp, pp, dp, fsdp, ep, cp and the bytes
    each GPU sends for them (`tp_bytes`, …). See the module docstring for each formula. Broadcasts."""
    f = lambda x: np.asarray(x, float)  # noqa: E731
    s, b, m = f(seq_len), f(micro_batch), f(n_micro)
    tp, pp, dp, cp, ep, vp = f(tp), f(pp), f(dp), f(cp), f(ep), f(vp)
    zero, domain = np.asarray(zero), f(nvlink_domain)
    full = np.asarray(recompute) == "full"
    h, L = f(shape["hidden"]), f(shape["layers"])
    parts = param_parts(shape)
    stage_layers = L / pp
    moe_stage_layers = parts["moe_layers"] / pp
    act = b * (s / cp) * h * BF16                      # one activation tensor of a micro-batch on this CP rank

    tp_bytes = (8.0 + 4.0 * full) * act * wire_factor("all_gather", tp) * stage_layers * m
    pp_bytes = 2.0 * vp * m * act / tp * wire_factor("p2p", pp)

    dense, expert = local_params(shape, tp, pp, ep)
    g = f(grad_bytes)
    n_dp, n_edp = dp * cp, np.maximum(dp * cp / ep, 1.0)
    sync = lambda n_par, n: np.where(  # noqa: E731
        zero == 0, g * n_par * wire_factor("all_reduce", n),
        np.where(zero == 3, g * n_par * wire_factor("reduce_scatter", n),
                 (g + BF16) * n_par * wire_factor("reduce_scatter", n)))
    dp_bytes = sync(dense, n_dp) + sync(expert, n_edp)
    fsdp_bytes = np.where(zero == 3, 2.0 * BF16 * m * (dense * wire_factor("all_gather", n_dp)
                                                       + expert * wire_factor("all_gather", n_edp)), 0.0)

    k = f(shape["top_k"])
    ep_bytes = (4.0 + 2.0 * full) * (act / tp) * k * wire_factor("all_to_all", ep) * moe_stage_layers * m

    kv_width = np.maximum(f(shape["kv_heads"]) / tp, 1.0) * head_dim(shape)
    cp_layer = 2.0 * b * s * kv_width * BF16 * wire_factor("all_gather", cp)
    cp_bytes = (3.0 + full) * cp_layer * stage_layers * m

    nv, so = nvlink_bytes_per_s, scaleout_bytes_per_s
    out = {
        "tp": tp_bytes / _link(tp <= domain, nv, so),
        "pp": pp_bytes / _link(tp * pp <= domain, nv, so),
        "dp": dp_bytes / _link(tp * dp * cp <= domain, nv, so),
        "fsdp": fsdp_bytes / _link(tp * dp * cp <= domain, nv, so),
        "ep": ep_bytes / _link(ep * tp <= domain, nv, so),
        "cp": cp_bytes / _link(tp * cp <= domain, nv, so),
    }
    for key, val in (("tp", tp_bytes), ("pp", pp_bytes), ("dp", dp_bytes), ("fsdp", fsdp_bytes),
                     ("ep", ep_bytes), ("cp", cp_bytes)):
        out[key + "_bytes"] = val
    return common_shape(out)


def common_shape(parts: dict) -> dict:
    """Every array of `parts` broadcast to their common shape (so rows × layouts index every key)."""
    shape = np.broadcast_shapes(*(np.shape(v) for v in parts.values()))
    return {k: np.broadcast_to(np.asarray(v, float), shape) + 0.0 for k, v in parts.items()}
