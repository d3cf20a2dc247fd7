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

Which link, and what a ring pays per step (the data-parallel collectives: dp, fsdp):
- bandwidth: a group inside one NVLink domain runs at NVLink speed. A group spread over several
  domains with g of its ranks in each runs NCCL's rings one per NIC (channel), each crossing every
  domain boundary once, so the inter-domain traffic spreads over the g ranks' NICs: bus bandwidth
  min(NVLink, g × NIC per GPU). FSDP over whole 8-GPU nodes (TP 1) therefore moves 8 × 50 GB/s per
  H100 rank, a DP group of one rank per node (TP 8) 50 GB/s. Megatron's rank order (TP innermost,
  then CP, then DP) gives g = min(d·c, domain ÷ t) for the DP group, min(d·c/e, domain ÷ (t·e))
  for the expert-DP group.
- latency: NCCL's own model of a ring all-gather or reduce-scatter (NVIDIA/nccl@5067397c2676
  src/graph/tuning.cc, ncclTunerConstantsDefaults and the ring branch of ncclTopoTuneModel, Simple
  protocol): base 8.4 µs + (n − 1 − (N − 1)) × 3.4 µs per NVLink hop + (N − 1) × 14 µs per network
  hop, N the NVLink domains the group spans (all-reduce: twice the steps). A collective over
  thousands of ranks therefore pays milliseconds before its first byte is useful: ≈ 36 ms for an
  all-gather over 4,096 H100 ranks two per node, whatever its size.
- count: ZeRO-3 / FSDP issues one all-gather per layer in each micro-batch's forward, one
  all-gather and one reduce-scatter per layer in its backward (PyTorch FSDP's per-block units,
  MaxText's per-layer scan); ZeRO-0/1/2 (Megatron's DDP / distributed optimizer) one collective
  pair per gradient bucket per step, buckets of max(40M, 1M × DP) parameters
  (NVIDIA/Megatron-LM megatron/core/distributed/distributed_data_parallel.py).
The per-layer and per-step collective times (`fsdp_ag_layer`, `fsdp_rs_layer`, `dp_rs_step`,
`dp_ag_step`) are what llmplan.perf.model overlaps with the compute that can hide them.
- ep: the all-to-all's traffic to ranks in the same NVLink domain goes over NVLink, the rest over
  each rank's own NIC (both at once: the slower sets the time); across domains a token is sent once
  per destination domain and forwarded there over NVLink (ep_copies: DeepSeek-V3 §3.2.2, DeepEP),
  so the NIC carries (N − 1)·(1 − q) copies of a token over N domains (q: the chance a domain holds
  none of its k experts), not k·(e − g)/e.
  With TP > 1 the experts are split over the TP group too and the dispatched copies are
  all-gathered over it (and reduce-scattered back), s·b·k·h·2·(t − 1)/t per layer and pass, on NVLink.
"""

import numpy as np

from llmplan.perf.shapes import head_dim, param_parts

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p")
BF16 = 2.0
# NCCL's tuning constants (NVIDIA/nccl@5067397c2676 src/graph/tuning.cc, ncclTunerConstantsDefaults):
# baseLatencies[Ring][Simple], hwLatencies[NVLINK][Ring][Simple], hwLatencies[NET][Ring][Simple], in seconds.
RING_BASE_S = 8.4e-6
HOP_NVLINK_S = 3.4e-6
HOP_NET_S = 14.0e-6
# Megatron-LM's default gradient bucket: max(40M, 1M × DP size) parameters (distributed_data_parallel.py).
BUCKET_PARAMS, BUCKET_PARAMS_PER_RANK = 40e6, 1e6


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


def ring_latency(kind, n, per_domain):
    """Seconds a ring all-gather / reduce-scatter (or all-reduce: twice the steps) over n ranks pays
    before bandwidth, with `per_domain` of its ranks in each NVLink domain: NCCL's model, base +
    (steps − network steps) × NVLink hop + network steps × network hop (module docstring); 0 for n = 1."""
    n = np.asarray(n, float)
    domains = np.ceil(n / np.clip(np.asarray(per_domain, float), 1.0, None))
    twice = 2.0 if kind == "all_reduce" else 1.0
    if kind not in ("all_reduce", "all_gather", "reduce_scatter"):
        raise ValueError(f"ring latency is for all_reduce, all_gather or reduce_scatter, not {kind!r}")
    steps, net = twice * (n - 1.0), twice * np.maximum(domains - 1.0, 0.0)
    return np.where(n > 1, RING_BASE_S + (steps - net) * HOP_NVLINK_S + net * HOP_NET_S, 0.0)


def ring_bandwidth(n, per_domain, nvlink_bytes_per_s, scaleout_bytes_per_s):
    """Bus bandwidth of a ring collective over n ranks with `per_domain` of them in each NVLink
    domain: NVLink inside one domain, else min(NVLink, per_domain × NIC per GPU) (module docstring)."""
    n, g = np.asarray(n, float), np.clip(np.asarray(per_domain, float), 1.0, None)
    nv, so = np.asarray(nvlink_bytes_per_s, float), np.asarray(scaleout_bytes_per_s, float)
    return np.where(n <= g, nv, np.minimum(nv, g * so))


def ring_seconds(kind, buffer_bytes, n, per_domain, nvlink_bytes_per_s, scaleout_bytes_per_s):
    """One ring collective with latency: ring_latency + wire_factor · bytes ÷ ring_bandwidth."""
    bw = ring_bandwidth(n, per_domain, nvlink_bytes_per_s, scaleout_bytes_per_s)
    return ring_latency(kind, n, per_domain) + collective_seconds(kind, buffer_bytes, n, bw)


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


def ep_copies(top_k, ep, per_domain, experts=None):
    """(near, far): copies of one token a rank's expert all-to-all puts on NVLink and on its NIC.

    Copies to the e − 1 other EP ranks, top_k per token, experts spread evenly over the e ranks:
    k·(g − 1)/e go to ranks in the same NVLink domain (g of the EP ranks share one). Across domains
    the dispatch sends a token once per destination domain, not once per expert, and forwards it to
    the expert's GPU over NVLink there; the combine reduces in the domain first and sends one
    partial sum back (DeepSeek-V3 report, arXiv 2412.19437 §3.2.2: tokens go over IB to the GPU with
    the same in-node index on each target node, then over NVLink; deepseek-ai/DeepEP's normal
    kernels, which Megatron-Core's flex dispatcher and NVIDIA's cross-node EP recipes use). A token
    whose k distinct experts are drawn evenly from E, E/N in each of N = e/g domains, reaches
    (N − 1)·(1 − q) other domains on average, q = C(E − E/N, k)/C(E, k) the chance that a given
    domain holds none of them ((1 − 1/N)^k for E large or not given): far copies. The forwarded
    ones, (k·(e − g)/e)·(g − 1)/g, ride NVLink on the receiving side beside the direct k·(g − 1)/e.
    DeepSeek-V3 also caps a token at 4 nodes (node-limited routing); at EP 64 over 8 nodes the
    uncapped mean is 4.6 other nodes (with the cap at most 4), against 7 per-expert copies."""
    k, e, g = (np.asarray(x, float) for x in (top_k, ep, per_domain))
    g = np.clip(g, 1.0, np.maximum(e, 1.0))
    n = np.maximum(e / g, 1.0)
    if experts is None:
        miss = (1.0 - 1.0 / n) ** k
    else:
        from scipy.special import gammaln

        big = np.maximum(np.asarray(experts, float), k)
        rest = big - big / n
        with np.errstate(invalid="ignore"):
            miss = np.where(rest >= k, np.exp(gammaln(rest + 1.0) - gammaln(np.maximum(rest - k, 0.0) + 1.0)
                                              - gammaln(big + 1.0) + gammaln(big - k + 1.0)), 0.0)
    far = np.where(n > 1, (n - 1.0) * (1.0 - miss), 0.0)
    near = np.where(e > 1, k * (g - 1.0) / e + k * (e - g) / e * (g - 1.0) / g, 0.0)
    return near, far


def comm_seconds(shape: dict, seq_len, micro_batch, n_micro, tp, pp, dp, cp, ep, vp, zero,
                 nvlink_bytes_per_s, nvlink_domain, scaleout_bytes_per_s, grad_bytes=4.0,
                 recompute="none", shard_group=None) -> dict:
    """Per optimizer step per GPU, before overlap: seconds for tp, pp, dp, fsdp, ep, cp and the bytes
    each GPU sends for them (`tp_bytes`, …), plus the per-layer and per-step collective times the
    step model overlaps (module docstring). `shard_group` (ZeRO-3 only; NaN or None = all d·c
    ranks): hybrid sharding (PyTorch HSDP, MaxText's and Paxml's FSDP × DP meshes) shards over that
    many ranks and all-reduces each shard's gradients over the d·c ÷ shard_group replicas once per
    step. Broadcasts."""
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
    nv, so = nvlink_bytes_per_s, scaleout_bytes_per_s
    z3 = zero == 3
    # ZeRO-3 shards over the shard group (hybrid sharding) and replicates across the rest.
    shard = n_dp if shard_group is None else np.where(np.isnan(f(shard_group)), n_dp, np.clip(f(shard_group), 1.0, n_dp))
    n_sh = np.where(z3, shard, n_dp)
    n_esh = np.where(z3, np.clip(np.minimum(shard, n_edp), 1.0, None), n_edp)
    rep, erep = n_dp / n_sh, n_edp / n_esh
    per_dp = np.minimum(n_sh, np.maximum(np.floor(domain / tp), 1.0))           # shard-group ranks in one NVLink domain
    per_edp = np.minimum(n_esh, np.maximum(np.floor(domain / (tp * ep)), 1.0))
    per_rep = np.minimum(rep, np.maximum(np.floor(domain / (tp * n_sh)), 1.0))
    per_erep = np.minimum(erep, np.maximum(np.floor(domain / (tp * ep * n_esh)), 1.0))
    # ZeRO-0/1/2: once per step, in buckets (each pays the ring latency); ZeRO-0 all-reduces, 1/2 reduce-scatter
    # the gradients and all-gather the updated bf16 parameters.
    ar = zero == 0

    def per_step(n_par, n, per):
        buckets = np.where(n_par > 0, np.maximum(np.ceil(n_par / np.maximum(BUCKET_PARAMS, BUCKET_PARAMS_PER_RANK * n)), 1.0), 0.0)
        bw = ring_bandwidth(n, per, nv, so)
        rs = np.where(ar, buckets * ring_latency("all_reduce", n, per) + collective_seconds("all_reduce", g * n_par, n, bw),
                      buckets * ring_latency("reduce_scatter", n, per) + collective_seconds("reduce_scatter", g * n_par, n, bw))
        ag = np.where(ar, 0.0, buckets * ring_latency("all_gather", n, per) + collective_seconds("all_gather", BF16 * n_par, n, bw))
        return rs, ag

    rs_d, ag_d = per_step(dense, n_dp, per_dp)
    rs_e, ag_e = per_step(expert, n_edp, per_edp)
    # Hybrid sharding: each shard's gradients all-reduced over its replicas once per step, one bucket per layer.
    hsdp = lambda n_par, r, per: np.where(  # noqa: E731
        (r > 1) & (n_par > 0), stage_layers * ring_latency("all_reduce", r, per)
        + collective_seconds("all_reduce", g * n_par / n_sh, r, ring_bandwidth(r, per, nv, so)), 0.0)
    hsdp_step = hsdp(dense, rep, per_rep) + hsdp(expert, erep, per_erep)
    dp_rs_step = np.where(z3, hsdp_step, rs_d + rs_e)
    dp_ag_step = np.where(z3, 0.0, ag_d + ag_e)
    sync = lambda n_par, n, n_s, r: np.where(  # noqa: E731
        zero == 0, g * n_par * wire_factor("all_reduce", n),
        np.where(z3, g * n_par * (wire_factor("reduce_scatter", n_s) * m + wire_factor("all_reduce", r) / n_s),
                 (g + BF16) * n_par * wire_factor("reduce_scatter", n)))
    dp_bytes = sync(dense, n_dp, n_sh, rep) + sync(expert, n_edp, n_esh, erep)
    fsdp_bytes = np.where(z3, 2.0 * BF16 * m * (dense * wire_factor("all_gather", n_sh)
                                                + expert * wire_factor("all_gather", n_esh)), 0.0)
    # ZeRO-3 / FSDP: per layer of the stage and per micro-batch (dense and expert shards gathered side by side).
    layer_d, layer_e = dense / stage_layers, expert / np.maximum(moe_stage_layers, 1e-9) * (moe_stage_layers > 0)
    moe_share = np.where(stage_layers > 0, moe_stage_layers / stage_layers, 0.0)
    fsdp_ag_layer = np.where(z3, ring_seconds("all_gather", BF16 * layer_d, n_sh, per_dp, nv, so)
                             + moe_share * ring_seconds("all_gather", BF16 * layer_e, n_esh, per_edp, nv, so), 0.0)
    fsdp_rs_layer = np.where(z3, ring_seconds("reduce_scatter", g * layer_d, n_sh, per_dp, nv, so)
                             + moe_share * ring_seconds("reduce_scatter", g * layer_e, n_esh, per_edp, nv, so), 0.0)
    passes = stage_layers * m                               # layer passes per step on this GPU

    k = f(shape["top_k"])
    near, far = ep_copies(k, ep, np.minimum(ep, np.maximum(np.floor(domain / tp), 1.0)), f(shape["experts"]))
    passes_moe = (4.0 + 2.0 * full) * moe_stage_layers * m          # dispatch + combine, forward + backward (+ recompute)
    token = act / tp                                                   # a rank's tokens (its sequence-parallel share) × h × 2 B
    # Expert TP (= the dense TP): the dispatched copies are all-gathered over the TP group after the all-to-all and
    # reduce-scattered before it on the way back (Megatron-Core's token dispatcher), inside the NVLink domain.
    etp_bytes = passes_moe * act * k * wire_factor("all_gather", tp)
    ep_near_bytes, ep_far_bytes = passes_moe * token * near + etp_bytes, passes_moe * token * far
    ep_bytes = ep_near_bytes + ep_far_bytes
    ep_seconds = np.maximum(ep_near_bytes / np.asarray(nv, float),
                            np.where(ep * tp <= domain, 0.0, ep_far_bytes / np.asarray(so, float)))

    kv_width = np.maximum(f(shape["kv_heads"]) / tp, 1.0) * head_dim(shape)
    cp_layer = 2.0 * b * s * kv_width * BF16 * wire_factor("all_gather", cp)
    cp_bytes = (3.0 + full) * cp_layer * stage_layers * m

    out = {
        "tp": tp_bytes / _link(tp <= domain, nv, so),
        "pp": pp_bytes / _link(tp * pp <= domain, nv, so),
        "dp": np.where(z3, fsdp_rs_layer * passes, 0.0) + dp_rs_step + dp_ag_step,
        "fsdp": np.where(z3, fsdp_ag_layer * 2.0 * passes, 0.0),
        "ep": ep_seconds,
        "cp": cp_bytes / _link(tp * cp <= domain, nv, so),
        "fsdp_ag_layer": fsdp_ag_layer, "fsdp_rs_layer": fsdp_rs_layer, "layer_passes": passes,
        "dp_rs_step": dp_rs_step, "dp_ag_step": dp_ag_step,
    }
    for key, val in (("tp", tp_bytes), ("pp", pp_bytes), ("dp", dp_bytes), ("fsdp", fsdp_bytes),
                     ("ep", ep_bytes), ("cp", cp_bytes)):
        out[key + "_bytes"] = val
    return common_shape(out)


def common_shape(parts: dict) -> dict:
    """Every array of `parts` broadcast to their common shape (so rows × layouts index every key)."""
    shape = np.broadcast_shapes(*(np.shape(v) for v in parts.values()))
    return {k: np.broadcast_to(np.asarray(v, float), shape) + 0.0 for k, v in parts.items()}
