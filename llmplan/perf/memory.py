import numpy as np
def layout_bytes(shape, seq_len, micro_batch, tp, pp, vp, dp, cp, ep, zero, recompute, fp32_grads=True, flash_attention=True):
    from llmplan.perf.shapes import params_from_shape
    total, active = params_from_shape(shape)
    local_dense = active / (tp * pp)
    local_exp = (total - active) / (tp * pp * ep)
    zero = np.asarray(zero)
    g = 4.0 if fp32_grads else 2.0
    st = np.where(zero == 3, (2 + g + 12) * (local_dense / (dp * cp) + local_exp / np.maximum(dp * cp / ep, 1)),
                  (2 + g) * (local_dense + local_exp) + 12 * (local_dense / (dp * cp) + local_exp / np.maximum(dp * cp / ep, 1)))
    h, L = shape["hidden"], shape["layers"]
    sbh = np.asarray(seq_len, float) * micro_batch * h / (tp * cp)
    rc = np.asarray(recompute)
    per_layer = np.where(rc == "full", 2 * sbh, 34 * sbh)
    act = L * per_layer * (1 + (pp - 1) / (pp * vp)) + np.where(rc == "full", 34 * sbh, 0)
    logits = np.asarray(seq_len, float) * micro_batch * shape["vocab"] * 4 / (tp * cp)
    return {"states": st, "activations": act, "logits": logits, "total": st + act + logits}
