"""Training compute. C ≈ 6·N·D model FLOPs (Kaplan et al. 2020): 2 FLOPs per parameter per token
forward, 4 backward. N is *active* parameters for mixture-of-experts. Full activation recompute
costs ≈ 8·N·D hardware FLOPs, but utilisation (MFU) is counted against the 6·N·D model FLOPs."""

import polars as pl


def training_flop(params, active_params, tokens):
    """6 · N_active · D. Works on Polars expressions and on plain numbers/arrays."""
    if isinstance(params, pl.Expr):
        return 6.0 * pl.coalesce(active_params, params) * tokens
    n = params if active_params is None else active_params
    return 6.0 * n * tokens


def attention_flop_per_token(n_layers, d_model, seq_len):
    """Extra forward+backward FLOPs per token from attention scores and values, 12·L·s·d
    (Chowdhery et al. 2022, appendix B; the count MosaicML's MFU uses). Recorded apart from 6·N·D."""
    return 12.0 * n_layers * seq_len * d_model
