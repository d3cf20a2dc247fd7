"""A transformer's shape from its size, and its parameter counts from its shape.

The step model counts FLOPs, bytes and messages per layer, so it needs layers, hidden size, FFN
width, heads, KV heads and vocabulary — not only N. Users rarely state them; this module supplies
them by a rule fitted to public configurations and lets any of them be overridden.

Conventions (the Llama/Qwen/Mistral family, which every public config below follows):
- attention: query and output projections h·(heads·head_dim) each, key and value projections
  h·(kv_heads·head_dim) each (grouped-query attention, Ainslie et al. 2023); head_dim 128.
- MLP: SwiGLU's three matrices, 3·h·ffn (Shazeer 2020); an MoE layer has `experts` such MLPs of
  width `moe_ffn` (`top_k` active per token), `shared_experts` always-active ones of the same width,
  and a router h·experts; the first `dense_layers` layers of an MoE keep a dense MLP of width `ffn`
  (DeepSeek-V3 has 3). A dense model is experts = top_k = 1, moe_ffn = 0.
- input embedding V·h plus an untied output layer V·h (an optional `tied_embeddings` = 1 counts one);
  norms and biases are left out (< 0.01 %). `head_dim` is an optional key (default hidden ÷ heads):
  carry it where heads·head_dim ≠ hidden (Qwen3-32B, Qwen3-30B-A3B, Qwen3-235B-A22B).
- Multi-head latent attention (DeepSeek-V2/V3; DeepSeek-V2 paper §2.1.2) where a shape carries
  `kv_lora_rank` (with `q_lora_rank`, `qk_rope_head_dim`, `v_head_dim`; head_dim is then the query/key
  width, nope + rope): per layer h·q_lora + q_lora·heads·head_dim (queries; h·heads·head_dim without
  a query LoRA) + h·(kv_lora + rope) + kv_lora·heads·(head_dim − rope + v_head_dim) (keys and values
  up-projected from the latent) + heads·v_head_dim·h (output): 187.1 M per DeepSeek-V3 layer, so its
  published shape counts 671.3 B total and 37.5 B active (the release says 671 B and 37 B). Shapes
  without these keys (the size rule, the plan's options) approximate MLA by grouped-query attention
  of the same hidden size.

The rule (`shape_from_size`): h = 2.214·N^0.3287, the least-squares line of log h on log N over
the 14 dense configurations in `PUBLIC_CONFIGS` (7B–405B), rounded to a multiple of 1024 from 4096
up (heads = h/128 divisible by TP 8 and by 8 KV heads, as in every config listed ≥ 8B except
Qwen2.5-7B), of 512 from 1024 (Llama 3.2's 2048 and 3072, Qwen2.5's 1536), else of 128; ffn = 3.5·h (Llama 3's ratio) to a multiple of 256; kv_heads = gcd(heads, 8)
(8 from 7B up in Llama 2 70B/3/Qwen, fewer only in small models); layers from the parameter count
that is left after embeddings, then ffn re-solved (multiple of 256) so the shape's own count
reproduces the requested size. Vocabulary defaults to 128,256, Llama 3's (a 128K-class tokenizer
like Qwen's 151,936 and DeepSeek-V3's 129,280: every 2024–25 release listed uses 128K–152K, while
32,000 belongs to 2023's Llama 2/Mistral).
MoE (active < total), fitted to the 13 public MoE configurations in `PUBLIC_CONFIGS` (Mixtral
8x7B/8x22B, Qwen3-30B-A3B/235B-A22B, DeepSeek-V2/V2-Lite/V3, Llama 4 Scout/Maverick, gpt-oss-20b/120b,
Phi-3.5-MoE, Grok-1; 2.6B–84B active):
- top_k 8 (DeepSeek-V3 256/8, Qwen3 128/8, DeepSeek-V2 160/6; Mixtral's 8/2 is the old coarse style)
  or experts/4 when fewer than 32 experts are given; experts, when not given, from the sparsity
  with the routed experts taking ρ = 0.6 of the active non-embedding parameters (DeepSeek-V3 0.58,
  Qwen3-235B-A22B 0.68, Qwen3-30B-A3B 0.67; the embedding here at the dense rule's h for the active
  size): E = k·(1 + (N − A)/(ρ·A_non-embedding)), to a multiple of 64 (so every EP up to 64 divides
  it; 128 for Qwen3-235B-A22B's sizes and 256 for DeepSeek-V3's, their real counts);
- shared experts (of the routed width): 1 from 64 experts up or with top-1 routing, else 0 — the
  median of each group (≥ 64 experts: DeepSeek-V3 1, Llama 4 Maverick 1, DeepSeek-V2/V2-Lite 2,
  Qwen3 and gpt-oss-120b 0; fewer: only Llama 4 Scout, top-1, has one); dense layers 0 (9 of 13);
- depth: L = 0.03990·A^0.09498·N^0.19014, the least-squares fit of ln L on ln A and ln N over the
  13 (their own counts; residual RMS 0.23 in ln L, against 0.31 for ln L on ln h alone);
- the identity that fixes the rest: one routed expert over all MoE layers holds X = (N − A)/(E − k)
  parameters, so routed and shared experts activate (k + shared)·X whatever the shape, and the
  remaining active count — embeddings, attention, router, dense layers — is a quadratic in h at the
  depth rule's L (attention 2·h² + 2·h·kv·128 per layer under the rule's heads): h is its root,
  rounded as the dense rule's; L is then re-solved at that h, and moe_ffn = X/(3·h·L_MoE) to a
  multiple of 16 (the tensor-core tile). Both counts come out within ~1 %; over the 13 configs the
  rule's layers are within a factor 0.52–1.47 of the real ones (Qwen3-235B-A22B's 94 layers are the
  deepest) and its hidden size within 0.71–1.50 (tests/llmplan/perf/test_shapes.py). DeepSeek-V3's
  sizes (671B, 37B, 256 experts, top-8) give 78 layers of 8192 (real: 61 of 7168, MLA's larger
  attention being counted here as a wider GQA model). Given layers, hidden, heads, moe_ffn, shared
  experts or dense layers are kept: with moe_ffn given (and layers not), h·L_MoE = X/(3·moe_ffn)
  takes the total and h the active count.
"""

import numpy as np

SHAPE_KEYS = ("layers", "hidden", "ffn", "heads", "kv_heads", "vocab", "experts", "top_k", "moe_ffn",
              "shared_experts", "dense_layers")
OPTIONAL_KEYS = ("head_dim", "tied_embeddings")     # read where present; complete_shape returns head_dim
MLA_KEYS = ("q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "v_head_dim")   # multi-head latent attention, where given
HEAD_DIM = 128.0
DEFAULT_VOCAB = 128256.0
DEFAULT_TOP_K = 8.0
ROUTED_SHARE = 0.6          # ρ: routed-expert share of the active non-embedding parameters
H_COEF, H_EXP = 2.214, 0.3287
FFN_RATIO = 3.5
# MoE depth rule L = L_COEF·A^L_EXP_ACTIVE·N^L_EXP_TOTAL: least squares of log L on log A and log N
# over the MoE rows of PUBLIC_CONFIGS (their own counts).
L_COEF, L_EXP_ACTIVE, L_EXP_TOTAL = 0.03990, 0.09498, 0.19014
SHARED_MIN_EXPERTS = 64.0   # a shared expert from this many experts up (DeepSeek-style), or with top-1 (Llama 4)

_LITGPT = "Lightning-AI/litgpt@26857050fe3ff627cd714fe92f5838f51a3d5efa litgpt/config.py"
_DSV3 = "deepseek-ai/DeepSeek-V3@9b4e9788e4a3a731f7567338ed15d3ec549ce03b inference/configs/"
_NEMO = "NVIDIA/NeMo@8cfedd7203462cb251a914e700e5605444277561 nemo/collections/llm/gpt/model/"
_PHIMOE = ("huggingface/transformers@23925e160765f64e73942fe794d73a753c4b5732 src/transformers/models/phimoe/"
           "configuration_phimoe.py (PhimoeConfig defaults, 'similar to microsoft/Phi-3.5-MoE-instruct')")
_GROK = ("xai-org/grok-1@be76c959faa3 run.py (via data/throughput/model_shapes.csv; ffn = 8·6144·2/3 rounded up "
         "to a multiple of 8, model.py ffn_size)")
# name: (layers, hidden, ffn, heads, kv_heads, vocab, experts, top_k, moe_ffn, shared, dense_layers, head_dim,
#        source[, extra shape keys]). Sources: litgpt's copy of each Hugging Face config.json (the URL is in its comment) and
#        DeepSeek's own inference configs. Totals are what params_from_shape makes of them.
PUBLIC_CONFIGS = {
    "Llama-2-7b": (32, 4096, 11008, 32, 32, 32000, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Llama-2-13b": (40, 5120, 13824, 40, 40, 32000, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Llama-2-70b": (80, 8192, 28672, 64, 8, 32000, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Llama-3-8B": (32, 4096, 14336, 32, 8, 128256, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Llama-3-70B": (80, 8192, 28672, 64, 8, 128256, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Llama-3.1-405B": (126, 16384, 53248, 128, 8, 128256, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Mistral-7B-v0.1": (32, 4096, 14336, 32, 8, 32000, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Qwen2.5-7B": (28, 3584, 18944, 28, 4, 152064, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Qwen2.5-14B": (48, 5120, 13824, 40, 8, 152064, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Qwen2.5-32B": (64, 5120, 27648, 40, 8, 152064, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Qwen2.5-72B": (80, 8192, 29568, 64, 8, 152064, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Qwen3-8B": (36, 4096, 12288, 32, 8, 151936, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Qwen3-14B": (40, 5120, 17408, 40, 8, 151936, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Qwen3-32B": (64, 5120, 25600, 64, 8, 151936, 1, 1, 0, 0, 0, 128, _LITGPT),
    "Mixtral-8x7B": (32, 4096, 0, 32, 8, 32000, 8, 2, 14336, 0, 0, 128, _LITGPT),
    "Mixtral-8x22B": (56, 6144, 0, 48, 8, 32768, 8, 2, 16384, 0, 0, 128, _LITGPT),
    "Qwen3-30B-A3B": (48, 2048, 0, 32, 4, 151936, 128, 8, 768, 0, 0, 128, _LITGPT),
    "Qwen3-235B-A22B": (94, 4096, 0, 64, 4, 151936, 128, 8, 1536, 0, 0, 128, _LITGPT),
    # MLA approximated as GQA with h/128 query heads and 8 KV heads (see the module docstring).
    "DeepSeek-V2": (60, 5120, 12288, 40, 8, 102400, 160, 6, 1536, 2, 1, 128, _DSV3 + "config_236B.json"),
    "DeepSeek-V3": (61, 7168, 18432, 56, 8, 129280, 256, 8, 2048, 1, 3, 128, _DSV3 + "config_671B.json"),
    "DeepSeek-V2-Lite": (27, 2048, 10944, 16, 8, 102400, 64, 6, 1408, 2, 1, 128, _DSV3 + "config_16B.json"),
    # Llama 4: a shared expert of the routed width beside top-1 routing; Maverick's MoE layers alternate
    # with dense ones (moe_layer_freq [0, 1]·24), counted here as 24 dense layers (the same parameters).
    "Llama-4-Scout": (48, 5120, 16384, 40, 8, 202048, 16, 1, 8192, 1, 0, 128, _NEMO + "llama.py Llama4Experts16Config"),
    "Llama-4-Maverick": (48, 5120, 16384, 40, 8, 202048, 128, 1, 8192, 1, 24, 128,
                         _NEMO + "llama.py Llama4Experts128Config"),
    # gpt-oss: 64 heads of 64 on a 2880 model (kv_channels 64), biases left out.
    "gpt-oss-20b": (24, 2880, 2880, 64, 8, 201088, 32, 4, 2880, 0, 0, 64, _NEMO + "gpt_oss.py GPTOSSConfig20B"),
    "gpt-oss-120b": (36, 2880, 2880, 64, 8, 201088, 128, 4, 2880, 0, 0, 64, _NEMO + "gpt_oss.py GPTOSSConfig120B"),
    "Phi-3.5-MoE": (32, 4096, 6400, 32, 8, 32064, 16, 2, 6400, 0, 0, 128, _PHIMOE),
    # Grok-1's gated-GELU experts counted as SwiGLU (3 matrices); input and output embedding tied.
    "Grok-1": (64, 6144, 32768, 48, 8, 131072, 8, 2, 32768, 0, 0, 128, _GROK, {"tied_embeddings": 1}),
}
# Sizes the developers state (billions, total/active), to compare the shapes' counts with.
PUBLISHED_SIZES = {"Llama-3-8B": (8.03, 8.03), "Llama-3-70B": (70.6, 70.6), "Llama-3.1-405B": (405.0, 405.0),
                   "Mixtral-8x7B": (46.7, 12.9), "Mixtral-8x22B": (141.0, 39.0), "Qwen3-30B-A3B": (30.5, 3.3),
                   "Qwen3-235B-A22B": (235.0, 22.0), "DeepSeek-V2": (236.0, 21.0), "DeepSeek-V3": (671.0, 37.0),
                   # Meta's Llama 4 model cards (17B active, 109B / 400B total); Microsoft's Phi-3.5-MoE card (6.6B
                   # active of 42B). gpt-oss's cards count active parameters without the input embedding; Grok-1's
                   # release states no active count: both are left out.
                   "Llama-4-Scout": (109.0, 17.0), "Llama-4-Maverick": (400.0, 17.0), "Phi-3.5-MoE": (42.0, 6.6)}


def public_shape(name: str) -> dict:
    """One of PUBLIC_CONFIGS as a shape dict (numpy scalars), with its head_dim."""
    row = PUBLIC_CONFIGS[name]
    shape = {k: np.asarray(float(v)) for k, v in zip(SHAPE_KEYS, row[:11])}
    shape["head_dim"] = np.asarray(float(row[11]))
    shape.update({k: np.asarray(float(v)) for k, v in (row[13] if len(row) > 13 else {}).items()})
    return shape


def _f(x):
    return np.asarray(x, dtype=float)


def _round_to(x, step):
    return np.maximum(np.round(x / step), 1.0) * step


def _attention_params(h, heads, kv_heads, head_dim):
    return 2.0 * h * heads * head_dim + 2.0 * h * kv_heads * head_dim


def _mla(shape: dict):
    """(is MLA, q_lora, kv_lora, rope, v_head_dim) per row: MLA where kv_lora_rank is given (> 0)."""
    get = lambda k: _f(shape[k]) if shape.get(k) is not None else np.asarray(np.nan)  # noqa: E731
    kv_lora = get("kv_lora_rank")
    mla = ~np.isnan(kv_lora) & (np.nan_to_num(kv_lora) > 0)
    return (mla, np.nan_to_num(get("q_lora_rank")), np.nan_to_num(kv_lora), np.nan_to_num(get("qk_rope_head_dim")),
            np.where(np.isnan(get("v_head_dim")), head_dim(shape), get("v_head_dim")))


def attention_params(shape: dict):
    """Attention parameters of one layer: GQA's 2·h·heads·head_dim + 2·h·kv_heads·head_dim, or MLA's
    (module docstring) where the shape carries kv_lora_rank."""
    h, heads, kv, d = _f(shape["hidden"]), _f(shape["heads"]), _f(shape["kv_heads"]), head_dim(shape)
    mla, q_lora, kv_lora, rope, dv = _mla(shape)
    q = np.where(q_lora > 0, h * q_lora + q_lora * heads * d, h * heads * d)
    mla_params = q + h * (kv_lora + rope) + kv_lora * heads * (d - rope + dv) + heads * dv * h
    return np.where(mla, mla_params, _attention_params(h, heads, kv, d))


def attention_core_width(shape: dict):
    """heads × (query/key width + value width) ÷ 2 — the h_q of the attention core's 4·s·h_q FLOPs per
    token forward (QKᵀ over the query/key width, A·V over the value width): heads·head_dim under GQA,
    heads·(head_dim + v_head_dim)/2 under MLA (DeepSeek-V3: 128·(192 + 128)/2)."""
    mla, _, _, _, dv = _mla(shape)
    d = head_dim(shape)
    return _f(shape["heads"]) * np.where(mla, (d + dv) / 2.0, d)


def head_dim(shape: dict):
    """The shape's head_dim, or hidden ÷ heads where the shape does not carry one."""
    if shape.get("head_dim") is not None:
        return _f(shape["head_dim"])
    return _f(shape["hidden"]) / _f(shape["heads"])


def params_from_shape(shape: dict):
    """(total, active) parameters of a shape: embeddings + untied output + per layer attention
    (q, o: h·heads·head_dim; k, v: h·kv_heads·head_dim) + MLP (dense 3·h·ffn; MoE: experts·3·h·moe_ffn
    total, top_k·3·h·moe_ffn active, plus shared experts and the router h·experts, which are active);
    norms are left out. MoE-ness is experts > 1; then only `dense_layers` layers have the dense MLP."""
    parts = param_parts(shape)
    total = parts["embedding"] + parts["attention"] + parts["dense_mlp"] + parts["expert_total"]
    active = parts["embedding"] + parts["attention"] + parts["dense_mlp"] + parts["expert_active"]
    return total, active


def param_parts(shape: dict) -> dict:
    """The parameter groups (whole model) the FLOP, memory and communication counts are built from:
    embedding (input + output, 2·V·h), attention (all layers), dense_mlp (the dense layers' MLPs),
    expert_total / expert_active (routed + shared experts + router over the MoE layers), routed_total
    (the routed experts alone: what expert parallelism splits), moe_layers and dense_mlp_layers."""
    L, h, ffn, heads, kv = (_f(shape[k]) for k in ("layers", "hidden", "ffn", "heads", "kv_heads"))
    V, E, k, f = (_f(shape[k]) for k in ("vocab", "experts", "top_k", "moe_ffn"))
    shared, dense_layers = _f(shape.get("shared_experts", 0.0)), _f(shape.get("dense_layers", 0.0))
    moe = E > 1
    moe_layers = np.where(moe, L - dense_layers, 0.0)
    mlp_layers = L - moe_layers
    per_expert = 3.0 * h * f
    router = h * E
    return {
        "embedding": (2.0 - _f(shape.get("tied_embeddings", 0.0))) * V * h,
        "attention": L * attention_params(shape),
        "dense_mlp": mlp_layers * 3.0 * h * ffn,
        "expert_total": moe_layers * ((E + shared) * per_expert + router),
        "expert_active": moe_layers * ((k + shared) * per_expert + router),
        "routed_total": moe_layers * E * per_expert,
        "moe_layers": moe_layers,
        "dense_mlp_layers": mlp_layers,
    }


def _round_hidden(h):
    """To a multiple of 1024 from 4096 up, of 512 from 1024, else of 128 (module docstring)."""
    return np.where(h >= 4096.0, _round_to(h, 1024.0), np.where(h >= 1024.0, _round_to(h, 512.0), _round_to(h, 128.0)))


def _hidden_rule(n):
    return _round_hidden(H_COEF * np.maximum(_f(n), 1e6) ** H_EXP)


def _given(overrides, key):
    v = None if overrides is None else overrides.get(key)
    return None if v is None else _f(v)


def _pick(given, default):
    """The given value where it is stated (not NaN), else the rule's."""
    if given is None:
        return default
    return np.where(np.isnan(given), default, given)


def _depth_rule(n, a):
    """Layers of an MoE by the depth rule: L = L_COEF · A^L_EXP_ACTIVE · N^L_EXP_TOTAL (module docstring)."""
    return L_COEF * np.maximum(_f(a), 1e6) ** L_EXP_ACTIVE * np.maximum(_f(n), 1e6) ** L_EXP_TOTAL


def _heads_at(h, g):
    """(head_dim, heads, kv_heads) at hidden size h: the given ones, else 128-wide heads, h/128 of them,
    gcd(heads, 8) KV heads (the dense rule's conventions)."""
    hd = _pick(g["head_dim"], h / _pick(g["heads"], h / HEAD_DIM))
    heads = _pick(g["heads"], np.maximum(np.round(h / hd), 1.0))
    kv = _pick(g["kv_heads"], np.gcd(heads.astype(np.int64), 8).astype(float))
    return hd, heads, kv


def _moe_solve(n, a, E, k, shared, dense_layers, V, tied, g):
    """(moe_ffn, hidden, layers) of an MoE reproducing total n and active a (module docstring):
    X = (n − a)/(E − k) is one routed expert's parameters over all MoE layers, so the routed and
    shared experts activate (k + shared)·X whatever the shape and the rest of the active count —
    embeddings, attention, router, dense layers — is a quadratic in h at the depth rule's layers."""
    d, t = dense_layers, tied
    X = np.maximum(n - a, 0.0) / np.maximum(E - k, 1.0)
    rest = a - (k + shared) * X
    # attention per layer = a2·h² + a1·h (query width h, or the given heads × head_dim)
    hd0 = _pick(g["head_dim"], np.asarray(HEAD_DIM))
    kv0 = _pick(g["kv_heads"], np.asarray(8.0))
    width = None if g["heads"] is None else g["heads"] * hd0
    a2 = np.where(np.isnan(width), 2.0, 0.0) if width is not None else np.asarray(2.0)
    a1 = 2.0 * kv0 * hd0 + (np.where(np.isnan(width), 0.0, 2.0 * np.nan_to_num(width)) if width is not None else 0.0)
    # dense layers' MLP per layer = c2·h² + c1·h (3·3.5·h², or 3·h·ffn given)
    c2 = np.asarray(3.0 * FFN_RATIO) if g["ffn"] is None else np.where(np.isnan(g["ffn"]), 3.0 * FFN_RATIO, 0.0)
    c1 = np.asarray(0.0) if g["ffn"] is None else 3.0 * np.nan_to_num(g["ffn"])
    f_given = g["moe_ffn"] is not None and not np.all(np.isnan(g["moe_ffn"]))
    L0 = _pick(g["layers"], _depth_rule(n, a))
    emb = (2.0 - t) * V
    qa = L0 * a2 + d * c2
    qb = emb + L0 * a1 + (L0 - d) * E + d * c1
    qc = -rest
    if f_given:   # moe_ffn given, layers not: h·(L − d) = P from the total, then the same count in h
        P = X / (3.0 * np.where(np.isnan(g["moe_ffn"]) | (g["moe_ffn"] <= 0), 1.0, g["moe_ffn"]))
        by_f = np.isnan(_pick(g["layers"], np.full(np.shape(P), np.nan))) & (np.nan_to_num(g["moe_ffn"]) > 0)
        qa = np.where(by_f, d * a2 + d * c2, qa)
        qb = np.where(by_f, emb + a2 * P + d * a1 + d * c1, qb)
        qc = np.where(by_f, a1 * P + P * E - rest, qc)
    with np.errstate(invalid="ignore", divide="ignore"):
        disc = np.sqrt(np.maximum(qb * qb - 4.0 * qa * qc, 0.0))
        h_solved = np.where(qa > 0, (-qb + disc) / (2.0 * np.where(qa > 0, qa, 1.0)), -qc / qb)
    ok = np.isfinite(h_solved) & (h_solved >= 128.0)
    h = _pick(g["hidden"], np.where(ok, _round_hidden(np.where(ok, h_solved, 128.0)), _hidden_rule(a)))
    hd, heads, kv = _heads_at(h, g)
    mla = {key: g[key] for key in MLA_KEYS if g[key] is not None}
    attn = attention_params({"hidden": h, "heads": heads, "kv_heads": kv, "head_dim": hd, **mla})
    dense_mlp = d * np.where(np.isnan(_pick(g["ffn"], np.asarray(np.nan))), 3.0 * h * _round_to(FFN_RATIO * h, 256.0),
                             3.0 * h * np.nan_to_num(_pick(g["ffn"], np.asarray(0.0))))
    with np.errstate(invalid="ignore", divide="ignore"):
        L_active = (rest - emb * h - dense_mlp + d * E * h) / (attn + E * h)
        L_solved = L_active
        if f_given:
            L_solved = np.where(by_f, P / h + d, L_active)
    L = _pick(g["layers"], np.maximum(np.round(np.nan_to_num(L_solved, nan=1.0)), d + 1.0))
    f = _pick(g["moe_ffn"], np.maximum(_round_to(X / (3.0 * h * np.maximum(L - d, 1.0)), 16.0), 16.0))
    return f, h, L


def complete_shape(params, active_params=None, overrides: dict | None = None) -> dict:
    """A full shape: the overrides (layers, hidden, ffn, heads, kv_heads, vocab, experts, top_k, and also
    moe_ffn, shared_experts, dense_layers, head_dim) where given and not NaN (head_dim defaults to
    hidden ÷ heads when heads are given), the rest by the rule in
    the module docstring, solved so the shape's counts reproduce `params` (total) and
    `active_params` (defaults to params: dense) when nothing contradicts them. Broadcasts."""
    n = _f(params)
    a = n if active_params is None else np.where(np.isnan(_f(active_params)), n, _f(active_params))
    g = {k: _given(overrides, k) for k in SHAPE_KEYS + OPTIONAL_KEYS + MLA_KEYS}
    V = _pick(g["vocab"], DEFAULT_VOCAB)
    h = _pick(g["hidden"], _hidden_rule(a))
    # head_dim: given, else hidden ÷ the given heads, else 128 (and then heads = hidden ÷ 128).
    hd, heads, kv = _heads_at(h, g)
    ffn_rule = _round_to(FFN_RATIO * h, 256.0)
    # Experts given as 1 (dense) say nothing about an MoE row's experts: those rows take the rule.
    e_in = None if g["experts"] is None else np.where(g["experts"] > 1, g["experts"], np.nan)
    moe = (n > a * 1.0001) | (_pick(g["experts"], 1.0) > 1)
    dense_layers = np.where(moe, _pick(g["dense_layers"], 0.0), 0.0)
    tied = _pick(g["tied_embeddings"], 0.0)
    embed = (2.0 - tied) * V * h
    mla = {k: g[k] + 0.0 * n for k in MLA_KEYS if g[k] is not None and not np.all(np.isnan(g[k]))}
    attn = attention_params({"hidden": h, "heads": heads, "kv_heads": kv, "head_dim": hd, **mla})

    # Dense: layers from the 3.5·h rule, then ffn re-solved to hit the size exactly.
    layer_rule = attn + 3.0 * h * ffn_rule
    L_dense = _pick(g["layers"], np.maximum(np.round((n - embed) / layer_rule), 1.0))
    ffn_dense = _pick(g["ffn"], np.maximum(_round_to(((n - embed) / L_dense - attn) / (3.0 * h), 256.0), 256.0))

    # MoE: top_k and experts, then (module docstring) hidden from the non-expert active count at
    # the depth rule's layers, layers re-solved at the rounded hidden, moe_ffn from total − active.
    k = _pick(g["top_k"], np.where(_pick(e_in, 64.0) < 32, np.maximum(np.floor(_pick(e_in, 64.0) / 4.0), 1.0),
                                   DEFAULT_TOP_K))
    a_ne = np.maximum(a - embed, 1.0)               # embeddings at the given hidden size, else the dense rule's at A
    e_rule = k * (1.0 + (n - a) / (ROUTED_SHARE * a_ne))
    E = _pick(e_in, np.maximum(_round_to(e_rule, 64.0), 2.0 * k))
    shared = _pick(g["shared_experts"], np.where((E >= SHARED_MIN_EXPERTS) | (k == 1.0), 1.0, 0.0))
    f_moe, h_moe, L_moe = _moe_solve(n, a, E, k, shared, dense_layers, V, tied, g)
    h = np.where(moe, h_moe, h)                      # the given hidden where given (_moe_solve keeps it)
    hd, heads, kv = _heads_at(h, g)
    ffn_moe = _pick(g["ffn"], _round_to(FFN_RATIO * h, 256.0))
    return {
        "layers": np.where(moe, L_moe, L_dense),
        "hidden": h + 0.0 * n,
        "ffn": np.where(moe, ffn_moe, ffn_dense),
        "heads": heads + 0.0 * n,
        "kv_heads": kv + 0.0 * n,
        "vocab": V + 0.0 * n,
        "experts": np.where(moe, E, 1.0),
        "top_k": np.where(moe, k, 1.0),
        "moe_ffn": np.where(moe, f_moe, 0.0),
        "shared_experts": np.where(moe, shared, 0.0),
        "dense_layers": dense_layers + 0.0 * n,
        "head_dim": hd + 0.0 * n,
        "tied_embeddings": tied + 0.0 * n,
        **mla,
    }


def shape_from_size(params, active_params=None, experts=None, top_k=None, vocab=None) -> dict:
    """The rule's shape for a size (total params, active params for an MoE); see the module docstring."""
    return complete_shape(params, active_params, {"experts": experts, "top_k": top_k, "vocab": vocab})


def _first(mask, *arrays):
    """The values of `arrays` at the first position where `mask` holds (after broadcasting)."""
    shape = np.broadcast(mask, *arrays).shape
    i = int(np.argmax(np.ravel(np.broadcast_to(mask, shape))))
    return [float(np.ravel(np.broadcast_to(x, shape))[i]) for x in arrays]


def check_shape(shape: dict, params, active_params=None, where: str = "the model") -> str | None:
    """One sentence on the first contradiction (any row), else None: the shape's total more than 25 %
    off the stated parameter count (or its active count off the stated active count), heads that do
    not divide the hidden size, KV heads that do not divide the heads, top_k above the experts."""
    total, active = params_from_shape(shape)
    n = _f(params)
    bad = np.abs(total / n - 1.0) > 0.25
    if np.any(bad):
        got, want = _first(bad, total, n)
        return (f"{where}: the shape (layers, hidden, ffn, heads, kv-heads, vocab, experts) holds {got / 1e9:.3g}B "
                f"parameters, more than 25 % off the stated {want / 1e9:.3g}B; give a consistent shape or leave "
                "those options out.")
    if active_params is not None:
        a = _f(active_params)
        bad = ~np.isnan(a) & (np.abs(active / np.where(np.isnan(a), 1.0, a) - 1.0) > 0.25)
        if np.any(bad):
            got, want = _first(bad, active, a)
            return (f"{where}: the shape activates {got / 1e9:.3g}B parameters per token, more than 25 % off the "
                    f"stated {want / 1e9:.3g}B active; give consistent --experts/--top-k or leave them out.")
    h, heads, kv = _f(shape["hidden"]), _f(shape["heads"]), _f(shape["kv_heads"])
    E, k = _f(shape["experts"]), _f(shape["top_k"])
    bad = np.mod(h, heads) != 0
    if np.any(bad):
        a_, h_ = _first(bad, heads, h)
        return f"{where}: {a_:.0f} attention heads do not divide the hidden size {h_:.0f}."
    bad = np.mod(heads, kv) != 0
    if np.any(bad):
        kv_, a_ = _first(bad, kv, heads)
        return f"{where}: {kv_:.0f} KV heads do not divide the {a_:.0f} attention heads."
    bad = k > E
    if np.any(bad):
        k_, e_ = _first(bad, k, E)
        return f"{where}: top-k {k_:.0f} is more than the {e_:.0f} experts."
    return None


def check_layout(shape: dict, tp, ep, where: str = "the layout") -> str | None:
    """One sentence on the first layout the shape cannot run, else None. Rules (Megatron-LM's):
    TP divides the attention heads (each rank owns heads/tp); for the KV heads either TP divides them
    or they divide TP (a KV head is then replicated on tp/kv_heads ranks, as Megatron does when
    num_query_groups < tp); EP divides the experts, so EP ≤ experts (a dense model has one "expert":
    EP 1)."""
    tp, ep = _f(tp), _f(ep)
    heads, kv, E = _f(shape["heads"]), _f(shape["kv_heads"]), _f(shape["experts"])
    bad = np.mod(heads, tp) != 0
    if np.any(bad):
        t_, a_ = _first(bad, tp, heads)
        return f"{where}: tensor parallel {t_:.0f} does not divide the {a_:.0f} attention heads."
    bad = (np.mod(kv, tp) != 0) & (np.mod(tp, kv) != 0)
    if np.any(bad):
        t_, kv_ = _first(bad, tp, kv)
        return f"{where}: tensor parallel {t_:.0f} and the {kv_:.0f} KV heads: neither divides the other."
    bad = (ep > E) | (np.mod(E, ep) != 0)
    if np.any(bad):
        e_, n_ = _first(bad, ep, E)
        return f"{where}: expert parallel {e_:.0f} must divide the {n_:.0f} experts (and so be at most that many)."
    return None
