import numpy as np
SHAPE_KEYS = ("layers","hidden","ffn","heads","kv_heads","vocab","experts","top_k","moe_ffn","shared_experts","dense_layers")

def shape_from_size(params, active_params=None, experts=None, top_k=None, vocab=None):
    n = np.asarray(params, float)
    a = n if active_params is None else np.asarray(active_params, float)
    h = np.maximum(np.round((128.0 * a / 12.0) ** (1 / 3) / 128.0) * 128.0, 128.0)
    L = np.maximum(np.round(a / (12.0 * h * h)), 1.0)
    heads = np.maximum(h / 128.0, 1.0)
    kv = np.where(a >= 6e9, np.minimum(8.0, heads), heads)
    ffn = np.round(3.5 * h / 256.0) * 256.0
    V = np.full_like(n, 128256.0) if vocab is None else np.asarray(vocab, float) + 0 * n
    moe = n > a * 1.0001
    E = np.where(moe, 64.0 if experts is None else experts, 1.0)
    k = np.where(moe, 8.0 if top_k is None else top_k, 1.0)
    return {"layers": L, "hidden": h, "ffn": ffn, "heads": heads, "kv_heads": kv, "vocab": V, "experts": E, "top_k": k,
            "moe_ffn": np.where(moe, ffn / 4, 0.0), "shared_experts": 0 * n, "dense_layers": 0 * n}

def params_from_shape(s):
    h, L = s["hidden"], s["layers"]
    hd = h / s["heads"]
    attn = 2 * h * h + 2 * h * s["kv_heads"] * hd
    moe = s["experts"] > 1
    mlp_t = np.where(moe, s["experts"] * 3 * h * s["moe_ffn"], 3 * h * s["ffn"])
    mlp_a = np.where(moe, s["top_k"] * 3 * h * s["moe_ffn"], 3 * h * s["ffn"])
    emb = 2 * s["vocab"] * h
    return emb + L * (attn + mlp_t), emb + L * (attn + mlp_a)

def complete_shape(params, active_params, overrides):
    s = shape_from_size(params, active_params)
    for k, v in overrides.items():
        if v is not None:
            v = np.asarray(v, float)
            s[k] = np.where(np.isnan(v), s[k], v)
    return s
