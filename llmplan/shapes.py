"""Published model shapes (data/throughput/model_shapes.csv) and the layout checks they allow.

Why a table and not a rule: the per-step rows name real models whose shapes differ from any
size→shape rule (Nemotron's squared-ReLU MLP, Qwen3's 128-wide heads on a 2048 model, MLA).
The first-principles step model counts FLOPs per layer from these columns; a row whose model
is not in the table keeps NULL shape columns rather than a guessed one.
"""

import polars as pl

from llmplan.errors import Problem

# The columns core.step_benchmarks carries from the shape table.
STEP_SHAPE_COLUMNS = ("layers", "hidden", "ffn", "heads", "kv_heads", "head_dim", "vocab", "experts", "top_k",
                      "moe_ffn", "shared_experts", "dense_layers", "tied_embeddings", "mlp", "attention",
                      "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "v_head_dim")


def core_shapes(shapes: pl.DataFrame) -> pl.DataFrame:
    """core.model_shapes: typed, booleans as booleans, head_dim filled as hidden ÷ heads where unstated."""
    return shapes.with_columns(
        pl.coalesce("head_dim", pl.col("hidden") // pl.col("heads")).alias("head_dim"),
        *((pl.col(c) == "true").alias(c) for c in ("tied_embeddings", "linear_bias")),
    )


def with_shapes(steps: pl.DataFrame, shapes: pl.DataFrame | None) -> pl.DataFrame:
    """Per-step rows with their model's shape columns joined by model name (NULL where unknown)."""
    if shapes is None or not shapes.height:
        return steps.with_columns(pl.lit(None).alias(c) for c in STEP_SHAPE_COLUMNS)
    return steps.join(shapes.select("model", *STEP_SHAPE_COLUMNS), on="model", how="left")


def check_step_rows(data: dict) -> list[Problem]:
    """Layouts that cannot run, one sentence per row and column: TP×PP×CP must divide the GPU
    count; where the model's shape is known, TP must divide the attention heads and EP may not
    exceed the experts."""
    problems: list[Problem] = []
    sb = data["step_benchmarks"].typed
    if not sb.height:
        return problems
    shapes = data["model_shapes"].typed if "model_shapes" in data else pl.DataFrame()
    f = sb.select("model", "gpu_count", "tp", "pp", "cp", "ep", "source_file", "source_line").with_columns(
        pl.col("cp").fill_null(1), pl.col("ep").fill_null(1))
    if shapes.height:
        f = f.join(shapes.select("model", "heads", "experts"), on="model", how="left")
    else:
        f = f.with_columns(pl.lit(None, pl.Int64).alias("heads"), pl.lit(None, pl.Int64).alias("experts"))
    model_par = pl.col("tp") * pl.col("pp") * pl.col("cp")
    for r in f.filter(pl.col("gpu_count") % model_par != 0).iter_rows(named=True):
        problems.append(Problem(r["source_file"], r["source_line"], "gpu_count",
                                f"{r['gpu_count']} GPUs cannot hold TP {r['tp']} × PP {r['pp']} × CP {r['cp']}; "
                                "expected a GPU count divisible by tp × pp × cp"))
    for r in f.filter(pl.col("heads").is_not_null() & (pl.col("heads") % pl.col("tp") != 0)).iter_rows(named=True):
        problems.append(Problem(r["source_file"], r["source_line"], "tp",
                                f"TP {r['tp']} does not divide {r['model']}'s {r['heads']} attention heads "
                                "(data/throughput/model_shapes.csv); expected a divisor of the head count"))
    for r in f.filter(pl.col("experts").is_not_null() & (pl.col("ep") > pl.col("experts").clip(1, None))).iter_rows(named=True):
        problems.append(Problem(r["source_file"], r["source_line"], "ep",
                                f"EP {r['ep']} exceeds {r['model']}'s {r['experts']} experts; expected EP ≤ the expert count"))
    return problems
