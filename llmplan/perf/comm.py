import numpy as np
def comm_seconds(shape, seq_len, micro_batch, n_micro, tp, pp, dp, cp, ep, vp, zero, nvlink_bytes_per_s, nvlink_domain, scaleout_bytes_per_s, grad_bytes=4.0):
    h, L = shape["hidden"], shape["layers"]
    s, b = np.asarray(seq_len, float), np.asarray(micro_batch, float)
    act = b * s * h * 2 / cp
    tp_t = np.where(tp > 1, 8 * act * (tp - 1) / tp / nvlink_bytes_per_s * (L / pp) * n_micro, 0.0)
    pp_link = np.where(tp * pp <= nvlink_domain, nvlink_bytes_per_s, scaleout_bytes_per_s)
    pp_t = np.where(pp > 1, 2 * act / tp * vp * n_micro / pp_link, 0.0)
    total = 2 * shape["vocab"] * h + L * (4 * h * h + 3 * h * np.where(shape["experts"] > 1, shape["top_k"] * shape["moe_ffn"], shape["ffn"]))
    local = total / (tp * pp)
    n = dp * cp
    dp_link = np.where(tp * n <= nvlink_domain, nvlink_bytes_per_s, scaleout_bytes_per_s)
    dp_t = np.where(n > 1, (grad_bytes + 2) * local * (n - 1) / n / dp_link, 0.0)
    fsdp_t = np.where((zero == 3) & (n > 1), 2 * 2 * local * (n - 1) / n * n_micro / dp_link, 0.0)
    ep_link = np.where(ep * tp <= nvlink_domain, nvlink_bytes_per_s, scaleout_bytes_per_s)
    ep_t = np.where(ep > 1, 4 * b * s * h * shape["top_k"] * 2 * (ep - 1) / ep / tp * (L / pp) * n_micro / ep_link, 0.0)
    cp_t = np.where(cp > 1, 3 * 2 * b * s * shape["kv_heads"] * (h / shape["heads"]) * 2 * (cp - 1) / cp * (L / pp) * n_micro / nvlink_bytes_per_s, 0.0)
    return {"tp": tp_t, "pp": pp_t, "dp": dp_t, "fsdp": fsdp_t, "ep": ep_t, "cp": cp_t}
