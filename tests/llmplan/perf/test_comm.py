"""Communication: the NCCL tests' bus-bandwidth factors, a simulated ring, and per-dimension bytes by hand."""

import numpy as np
import pytest

from llmplan.perf.comm import (collective_seconds, comm_seconds, ring_bandwidth, ring_latency, ring_seconds,
                               ep_copies, wire_factor)
from llmplan.perf.shapes import public_shape, params_from_shape

GIB = 2 ** 30


def test_nccl_formulas_by_hand():
    # NVIDIA/nccl-tests doc/PERFORMANCE.md: busbw = algbw · 2(n−1)/n for all-reduce, (n−1)/n for
    # all-gather, reduce-scatter and all-to-all; algbw = S / t. So t = S · factor / busbw.
    # 1 GiB all-reduce over 8 ranks at 100 GB/s: 2·7/8·1073741824 / 1e11 = 0.018790 s.
    assert collective_seconds("all_reduce", GIB, 8, 100e9) == pytest.approx(2 * 7 / 8 * 1073741824 / 1e11)
    assert collective_seconds("all_reduce", GIB, 8, 100e9) == pytest.approx(0.0187905, rel=1e-5)
    assert collective_seconds("all_gather", GIB, 8, 100e9) == pytest.approx(7 / 8 * 1073741824 / 1e11)
    assert collective_seconds("reduce_scatter", GIB, 4, 50e9) == pytest.approx(3 / 4 * 1073741824 / 50e9)
    assert collective_seconds("all_to_all", GIB, 16, 50e9) == pytest.approx(15 / 16 * 1073741824 / 50e9)
    assert collective_seconds("p2p", GIB, 2, 50e9) == pytest.approx(1073741824 / 50e9)
    for kind in ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p"):
        assert collective_seconds(kind, GIB, 1, 100e9) == 0
    np.testing.assert_allclose(collective_seconds("all_reduce", GIB, np.array([1, 2, 4]), 100e9),
                               [0, GIB / 1e11, 1.5 * GIB / 1e11])
    with pytest.raises(ValueError, match="collective kind must be one of"):
        collective_seconds("broadcast", GIB, 8, 1e9)


def _ring_allreduce_bytes(n, chunk):
    """Simulate a ring reduce-scatter then all-gather on n ranks holding n chunks each; return the
    bytes each rank sent and check the result is the full sum everywhere."""
    rng = np.random.default_rng(n)
    data = rng.normal(size=(n, n, chunk))            # rank, chunk index, elements
    want = data.sum(axis=0)
    buf = data.copy()
    sent = np.zeros(n)
    for step in range(n - 1):                        # reduce-scatter: rank r sends chunk (r − step) to r + 1
        msgs = [(r, (r - step) % n, buf[r, (r - step) % n].copy()) for r in range(n)]
        for r, c, payload in msgs:
            buf[(r + 1) % n, c] += payload
            sent[r] += payload.size
    for step in range(n - 1):                        # all-gather: rank r owns chunk (r + 1) fully reduced
        msgs = [(r, (r + 1 - step) % n, buf[r, (r + 1 - step) % n].copy()) for r in range(n)]
        for r, c, payload in msgs:
            buf[(r + 1) % n, c] = payload
            sent[r] += payload.size
    np.testing.assert_allclose(buf, np.broadcast_to(want, buf.shape))
    return sent


@pytest.mark.parametrize("n", [2, 3, 8])
def test_simulated_ring_moves_what_the_factor_says(n):
    chunk = 5
    sent = _ring_allreduce_bytes(n, chunk)
    total = n * chunk                                # the buffer, in elements
    np.testing.assert_allclose(sent, wire_factor("all_reduce", n) * total)
    np.testing.assert_allclose(sent / 2, wire_factor("reduce_scatter", n) * total)


def _one_layer(name):
    s = public_shape(name)
    return dict(s, layers=np.asarray(1.0))


LINKS = dict(nvlink_bytes_per_s=450e9, nvlink_domain=8, scaleout_bytes_per_s=50e9)


def test_tp_bytes_of_one_llama3_70b_layer_by_hand():
    # One layer, b = 1, s = 8192, h = 8192, TP 8 with sequence parallelism: 4 collectives forward + 4 backward
    # (2 all-gathers + 2 reduce-scatters each way) of the 8192·8192·2 = 134,217,728-byte activation; each rank
    # moves 7/8 of it: 8 · 134217728 · 7/8 = 939,524,096 bytes per micro-batch, over NVLink (TP 8 ≤ 8).
    c = comm_seconds(_one_layer("Llama-3-70B"), 8192, 1, 1, tp=8, pp=1, dp=1, cp=1, ep=1, vp=1, zero=1, **LINKS)
    assert c["tp_bytes"] == 939_524_096
    assert c["tp"] == pytest.approx(939_524_096 / 450e9)
    # Four micro-batches, 80 layers over PP 4 (20 per stage): ×80; full recompute repeats the forward 4: ×12/8.
    c = comm_seconds(public_shape("Llama-3-70B"), 8192, 1, 4, tp=8, pp=4, dp=1, cp=1, ep=1, vp=1, zero=1,
                     recompute=np.array(["none", "full"]), **LINKS)
    np.testing.assert_allclose(c["tp_bytes"], [939_524_096 * 80, 939_524_096 * 80 * 1.5])
    # TP 16 leaves the NVLink domain: the NIC.
    c = comm_seconds(_one_layer("Llama-3-70B"), 8192, 1, 1, tp=16, pp=1, dp=1, cp=1, ep=1, vp=1, zero=1, **LINKS)
    assert c["tp"] == pytest.approx(8 * 134_217_728 * 15 / 16 / 50e9)


def test_pp_dp_fsdp_by_hand():
    s = public_shape("Llama-3-70B")
    total, _ = params_from_shape(s)
    c = comm_seconds(s, 8192, 1, 16, tp=8, pp=4, dp=32, cp=1, ep=1, vp=np.array([1, 5]), zero=1, **LINKS)
    # PP: per micro-batch one activation out and one gradient back per virtual stage, 8192·8192·2/8 bytes each.
    np.testing.assert_allclose(c["pp_bytes"], [2 * 16 * 8192 * 8192 * 2 / 8, 5 * 2 * 16 * 8192 * 8192 * 2 / 8])
    assert c["pp"][0] == pytest.approx(c["pp_bytes"][0] / 50e9)     # TP·PP = 32 > 8: the NIC
    # DP, distributed optimizer: reduce-scatter fp32 grads (4 B) + all-gather bf16 params (2 B) of N/(8·4), ×31/32.
    assert c["dp_bytes"][0] == pytest.approx(6 * total / 32 * 31 / 32, rel=1e-12)
    # Time: the bytes at one NIC (TP 8 leaves one DP rank per node) plus NCCL's ring latency per bucket: Megatron's
    # buckets of max(40M, 32M) = 40M parameters, ceil(N/32 ÷ 40M) of them, each a reduce-scatter and an all-gather
    # over 32 ranks in 32 nodes: 8.4 µs + 31 network hops × 14 µs = 442.4 µs.
    buckets = np.ceil(total / 32 / 40e6)
    assert c["dp"][0] == pytest.approx(c["dp_bytes"][0] / 50e9 + buckets * 2 * 442.4e-6)
    assert c["fsdp"][0] == 0
    # ZeRO-0 all-reduces the grads: 2·31/32·4 B; ZeRO-3 reduce-scatters them in each micro-batch's backward (16)
    # and gathers params twice per micro-batch: 2 · 31/32 · 2 B · N/32 · 16.
    c = comm_seconds(s, 8192, 1, 16, tp=8, pp=4, dp=32, cp=1, ep=1, vp=1, zero=np.array([0, 3]), grad_bytes=4.0, **LINKS)
    np.testing.assert_allclose(c["dp_bytes"], [2 * 31 / 32 * 4 * total / 32, 31 / 32 * 4 * total / 32 * 16])
    np.testing.assert_allclose(c["fsdp_bytes"], [0, 2 * 31 / 32 * 2 * total / 32 * 16])
    # A DP group inside one NVLink domain with its TP (TP 2 · DP 4 = 8) uses NVLink; one node: 8.4 + 3 × 3.4 µs.
    c = comm_seconds(s, 8192, 1, 1, tp=2, pp=1, dp=4, cp=1, ep=1, vp=1, zero=1, **LINKS)
    buckets = np.ceil(total / 2 / 40e6)
    assert c["dp"] == pytest.approx(c["dp_bytes"] / 450e9 + buckets * 2 * (8.4e-6 + 3 * 3.4e-6))


def test_moe_expert_parallel_and_expert_data_parallel_by_hand():
    # Mixtral-8x7B, b = 1, s = 4096, TP 1, EP 8, DP 16: per MoE layer and micro-batch 4 all-to-alls of the
    # 4096·4096·2·2 bytes (top-2 copies) a rank routes, ×7/8; 32 layers, 8 micro-batches; EP·TP = 8 fits NVLink.
    s = public_shape("Mixtral-8x7B")
    c = comm_seconds(s, 4096, 1, 8, tp=1, pp=1, dp=16, cp=1, ep=8, vp=1, zero=1, **LINKS)
    want = 4 * 4096 * 4096 * 2 * 2 * 7 / 8 * 32 * 8
    assert c["ep_bytes"] == pytest.approx(want)
    assert c["ep"] == pytest.approx(want / 450e9)
    # Expert grads: the routed experts 32·8·3·4096·14336 split over EP 8, synced over DP·CP/EP = 2 ranks (×1/2);
    # the rest (embeddings, attention, router) over all 16 (×15/16); 6 bytes per parameter.
    routed = 32 * 8 * 3 * 4096 * 14336
    rest = params_from_shape(s)[0] - routed
    assert c["dp_bytes"] == pytest.approx(6 * (routed / 8 * 1 / 2 + rest * 15 / 16), rel=1e-12)
    assert c["ep_bytes"] > 0 and comm_seconds(public_shape("Llama-3-8B"), 4096, 1, 8, 1, 1, 16, 1, 1, 1, 1,
                                              **LINKS)["ep_bytes"] == 0


def test_context_parallel_ring_by_hand():
    # Llama 3 70B, b = 1, s = 131072, TP 8, CP 4: per layer K and V of 8 KV heads / TP 8 = 1 head of 128:
    # 2 · 131072 · 128 · 2 bytes · 3/4 forward and twice that backward; 80 layers, 1 micro-batch; TP·CP = 32: NIC.
    c = comm_seconds(public_shape("Llama-3-70B"), 131072, 1, 1, tp=8, pp=1, dp=1, cp=4, ep=1, vp=1, zero=1, **LINKS)
    want = 3 * 2 * 131072 * 128 * 2 * 3 / 4 * 80
    assert c["cp_bytes"] == pytest.approx(want)
    assert c["cp"] == pytest.approx(want / 50e9)
    # CP also shrinks each rank's TP messages by 4.
    assert c["tp_bytes"] == pytest.approx(8 * 131072 / 4 * 8192 * 2 * 7 / 8 * 80)


def test_comm_broadcasts_over_rows_and_layouts():
    s = public_shape("Llama-3-70B")
    tp = np.array([1, 2, 4, 8])[None, :]
    dp = np.array([64, 32, 16, 8])[None, :]
    seq = np.array([4096, 8192])[:, None]
    c = comm_seconds(s, seq, 1, 8, tp=tp, pp=1, dp=dp, cp=1, ep=1, vp=1, zero=1, **LINKS)
    for key in ("tp", "pp", "dp", "fsdp", "ep", "cp", "tp_bytes", "dp_bytes"):
        assert np.shape(c[key]) == (2, 4), key
    assert np.all(c["tp"][:, 0] == 0) and np.all(np.diff(c["tp"][0]) > 0)


def test_ring_latency_is_nccls_model_by_hand():
    # NVIDIA/nccl@5067397c2676 src/graph/tuning.cc, ring branch for Simple: latency = baseLat (8.4 µs) +
    # (nsteps − nInterSteps) · intraLat + nInterSteps · interLat, nsteps = n − 1 for all-gather / reduce-scatter and
    # 2(n − 1) for all-reduce, nInterSteps = nNodes − 1 (all-reduce 2(nNodes − 1)); NVLink hop 3.4 µs, network hop 14 µs.
    assert ring_latency("all_gather", 8, 8) == pytest.approx(8.4e-6 + 7 * 3.4e-6)            # one node: 32.2 µs
    assert ring_latency("all_reduce", 16, 8) == pytest.approx(8.4e-6 + 28 * 3.4e-6 + 2 * 14e-6)   # 131.6 µs
    assert ring_latency("reduce_scatter", 128, 1) == pytest.approx(8.4e-6 + 127 * 14e-6)        # TP 8: one rank a node
    # 405B with TP 4 and FSDP over 4,096 ranks, two per node (2,048 nodes): 8.4 + 2,048 × 3.4 + 2,047 × 14 µs
    # = 35,629.6 µs per all-gather, whatever its size.
    assert ring_latency("all_gather", 4096, 2) == pytest.approx(35_629.6e-6)
    assert ring_latency("all_gather", 1, 8) == 0
    with pytest.raises(ValueError, match="ring latency"):
        ring_latency("all_to_all", 8, 8)


def test_ring_bandwidth_spreads_over_the_nics_of_a_domain():
    # Inside one domain: NVLink. Across domains with g ranks each: NCCL runs g rings (one per NIC), so the
    # inter-node traffic moves over g NICs: min(NVLink, g × NIC). H100: 450 GB/s one way, 50 GB/s a NIC.
    np.testing.assert_allclose(ring_bandwidth(np.array([8, 16, 16, 64, 64]), np.array([8, 8, 1, 2, 4]), 450e9, 50e9),
                               [450e9, 400e9, 50e9, 100e9, 200e9])
    # 1 GiB all-gather over 16 ranks on 2 nodes of 8: 15/16 · 2^30 B ÷ 400 GB/s + (8.4 + 14 · 3.4 + 14) µs.
    want = 15 / 16 * GIB / 400e9 + (8.4 + 14 * 3.4 + 14) * 1e-6
    assert ring_seconds("all_gather", GIB, 16, 8, 450e9, 50e9) == pytest.approx(want)


def test_fsdp_per_layer_collectives_by_hand():
    # Llama 3.1 405B, TP 4, FSDP over 4,096 ranks (2 a node): one layer's bf16 parameters, (N/4)/126 · 2 bytes,
    # all-gathered at 2 × 50 GB/s (two NICs a node) plus the 35.6 ms ring latency; gradients reduce-scattered in fp32.
    s = public_shape("Llama-3.1-405B")
    total, _ = params_from_shape(s)
    c = comm_seconds(s, 8192, 1, 2, tp=4, pp=1, dp=4096, cp=1, ep=1, vp=1, zero=3, **LINKS)
    layer = total / 4 / 126
    assert c["fsdp_ag_layer"] == pytest.approx(35_629.6e-6 + 4095 / 4096 * 2 * layer / 100e9)
    assert c["fsdp_rs_layer"] == pytest.approx(35_629.6e-6 + 4095 / 4096 * 4 * layer / 100e9)
    assert c["layer_passes"] == 126 * 2
    assert c["fsdp"] == pytest.approx(2 * 126 * 2 * c["fsdp_ag_layer"])
    # Hybrid sharding over 128 ranks (64 nodes, 2 a node) leaves 32 replicas: a gather pays 127 − 63 = 64 NVLink hops
    # and 63 network hops; each shard's fp32 grads are all-reduced over the 32 replicas (one a node: 2 · 31 network
    # steps) once a step, one bucket per layer (126) — a dense model has no expert group to pay for.
    h = comm_seconds(s, 8192, 1, 2, tp=4, pp=1, dp=4096, cp=1, ep=1, vp=1, zero=3, shard_group=128, **LINKS)
    assert h["fsdp_ag_layer"] == pytest.approx(8.4e-6 + 64 * 3.4e-6 + 63 * 14e-6 + 127 / 128 * 2 * layer / 100e9)
    ar = 126 * (8.4e-6 + 62 * 14e-6) + 2 * 31 / 32 * 4 * (total / 4 / 128) / 50e9
    assert h["dp_rs_step"] == pytest.approx(ar)


def test_expert_all_to_all_sends_a_token_once_per_node():
    # DeepSeek-V3 (arXiv 2412.19437 §3.2.2): EP 64 over 8 nodes of 8 H800, 256 experts (32 a node), top-8. A token's
    # 8 experts are 8 distinct of 256; a given other node holds none of them with probability
    # C(224, 8)/C(256, 8) = Π_{i<8} (224 − i)/(256 − i); the token crosses IB once per node it needs.
    q = np.prod([(224 - i) / (256 - i) for i in range(8)])
    near, far = ep_copies(8, 64, 8, 256)
    assert far == pytest.approx(7 * (1 - q))
    assert 4.6 < far < 4.7                                     # against 8 × 56/64 = 7 copies sent per expert
    # The same by simulation: route 20,000 tokens to 8 distinct experts of 256 and count the other nodes hit.
    rng = np.random.default_rng(7)
    picks = np.argsort(rng.random((20000, 256)), axis=1)[:, :8] // 32       # node of each chosen expert
    own = rng.integers(0, 8, 20000)[:, None]
    hit = np.array([len(set(r) - {o}) for r, o in zip(picks, own[:, 0])])
    assert hit.mean() == pytest.approx(far, rel=0.02)
    # NVLink: the 8 × 7/64 copies to node peers plus the forwarded share of the 8 × 56/64 remote ones (7 of 8).
    assert near == pytest.approx(8 * 7 / 64 + 8 * 56 / 64 * 7 / 8)
    # One node: everything over NVLink, (e − 1)/e of the copies, nothing on the NIC.
    near, far = ep_copies(8, 8, 8, 256)
    assert far == 0 and near == pytest.approx(8 * 7 / 8)
    assert ep_copies(8, 1, 1, 256) == (0, 0)


def test_expert_tp_gathers_every_copy():
    # EP 1, TP 4 on one node (DeepSeek-V3's 256 experts each split 4 ways): no all-to-all, but Megatron-Core's
    # dispatcher all-gathers the k = 8 copies of the sequence-parallel tokens over TP and reduce-scatters them
    # back, forward and backward: 4 × s·b·h·2 · 8 · 3/4 bytes per MoE layer and micro-batch on NVLink.
    s = public_shape("DeepSeek-V3")
    one = dict(s, layers=1, dense_layers=0)
    c = comm_seconds(one, 4096, 1, 1, tp=4, pp=1, dp=2, cp=1, ep=1, vp=1, zero=1, **LINKS)
    want = 4 * 4096 * 7168 * 2 * 8 * 3 / 4
    assert c["ep_bytes"] == pytest.approx(want)
    assert c["ep"] == pytest.approx(want / LINKS["nvlink_bytes_per_s"])
