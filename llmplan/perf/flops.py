import numpy as np
def flops_per_token(s, seq_len):
    h, L = s["hidden"], s["layers"]
    hd = h / s["heads"]
    attn_p = 2 * h * h + 2 * h * s["kv_heads"] * hd
    moe = s["experts"] > 1
    dense = 6 * L * (attn_p + np.where(moe, 0.0, 3 * h * s["ffn"]))
    expert = 6 * L * np.where(moe, s["top_k"] * 3 * h * s["moe_ffn"], 0.0)
    logits = 6 * s["vocab"] * h
    att = 12 * L * np.asarray(seq_len, float) * h
    return {"dense_gemm": dense, "expert_gemm": expert, "logits": logits, "attention": att, "total": dense + expert + logits + att}
def model_flops_per_token(s, seq_len, causal=False):
    f = flops_per_token(s, seq_len)
    return f["total"] - (0.5 * f["attention"] if causal else 0.0)
