"""Published model shapes (data/throughput/model_shapes.csv) and the layout checks they allow.

Why a table and not a rule: the per-step rows name real models whose shapes differ from any
size→shape rule (Nemotron's squared-ReLU MLP, Qwen3's 128-wide heads on a 2048 model, MLA).
The first-principles step model counts FLOPs per layer from these columns; a row whose model
is not in the table keeps NULL shape columns rather than a guessed one.
"""

import polars as pl

from llmplan.errors import LlmplanError, Problem

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


# --- A named published shape for a plan (`--shape NAME`, or a `shape` column of a per-step CSV) ---

def _key(name: str) -> str:
    """Case- and punctuation-insensitive form of a model name: 'DeepSeek-V3' ~ 'deepseek v3'."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _names(shapes: pl.DataFrame) -> pl.DataFrame:
    """(key, name, model) for every name a row answers to: its canonical without its parenthesis
    ('Llama 4 Scout (text model)' → 'Llama 4 Scout'), its `canonical` and its `model`; the first row
    (and the first of those forms, the one shown in suggestions) wins."""
    base = shapes.select("model", "canonical").with_row_index("_order")
    plain = base.with_columns(pl.col("canonical").str.replace(r"\s*\(.*\)\s*$", "").alias("canonical"))
    forms = pl.concat([plain.select("_order", pl.lit(0).alias("_rank"), pl.col("canonical").alias("name"), "model"),
                       base.select("_order", pl.lit(1).alias("_rank"), pl.col("canonical").alias("name"), "model"),
                       base.select("_order", pl.lit(2).alias("_rank"), pl.col("model").alias("name"), "model")])
    return (forms.with_columns(pl.col("name").map_elements(_key, return_dtype=pl.Utf8).alias("key"))
            .sort("_order", "_rank").unique("key", keep="first", maintain_order=True))


def closest_shape_names(name: str, shapes: pl.DataFrame, n: int = 3) -> list[str]:
    """The shipped names nearest `name` (difflib's ratio on the normalised forms; stdlib, no fuzzy
    matching package needed for fifty rows)."""
    import difflib

    forms = _names(shapes)
    display = dict(zip(forms["key"].to_list(), forms["name"].to_list()))
    return [display[k] for k in difflib.get_close_matches(_key(name), list(display), n=n, cutoff=0.0)]


def shape_values(shapes: pl.DataFrame) -> pl.DataFrame:
    """Per row of core.model_shapes: `model` and the shape columns as the step model counts them —
    experts 0 (dense) as 1 with top_k 1, tied_embeddings as 1/0, and an un-gated MLP (gelu,
    squared ReLU: two h × ffn matrices) as a SwiGLU one of ⅔ the width (the same parameters and
    FLOPs, llmplan.perf.model.shape_frame's convention), so every value is a number."""
    num = [c for c in STEP_SHAPE_COLUMNS if c in shapes.columns and c not in ("mlp", "attention", "tied_embeddings")]
    ungated = pl.col("mlp").fill_null("swiglu").is_in(["gelu", "squared_relu", "relu"]) if "mlp" in shapes.columns \
        else pl.lit(False)
    dense = pl.col("experts").fill_null(0) <= 1
    return shapes.select(
        "model", *[pl.col(c).cast(pl.Float64) for c in num],
        (pl.col("tied_embeddings").cast(pl.Float64) if "tied_embeddings" in shapes.columns else pl.lit(0.0)).alias("tied_embeddings"),
        ungated.alias("_ungated"), dense.alias("_dense"),
    ).with_columns(
        *[pl.when(pl.col("_ungated")).then(pl.col(c) * 2.0 / 3.0).otherwise(pl.col(c)).alias(c) for c in ("ffn", "moe_ffn")],
        pl.when(pl.col("_dense")).then(1.0).otherwise(pl.col("experts")).alias("experts"),
        pl.when(pl.col("_dense")).then(1.0).otherwise(pl.col("top_k")).alias("top_k"),
    ).drop("_ungated", "_dense")


def named_shape(name: str, shapes: pl.DataFrame, option: str = "--shape") -> dict[str, float]:
    """The shape columns (shape_values) of the row of core.model_shapes that `name` names, matching
    `model` or `canonical` case- and punctuation-insensitively; unstated columns are left out. An
    unknown name is one sentence naming the option and the closest shipped names."""
    forms = _names(shapes)
    hit = forms.filter(pl.col("key") == _key(name))
    if not hit.height:
        near = ", ".join(closest_shape_names(name, shapes))
        raise LlmplanError(f"{option} {name!r} is not a shape in data/throughput/model_shapes.csv; expected a model or "
                           f"canonical name there, e.g. {near}")
    row = shape_values(shapes).filter(pl.col("model") == hit["model"][0]).row(0, named=True)
    return {k: v for k, v in row.items() if k != "model" and v is not None}


def with_named_shapes(frame: pl.DataFrame, shapes: pl.DataFrame | None, path: str) -> tuple[pl.DataFrame, list[Problem]]:
    """Rows of a per-step CSV with a `shape` column: the named row's shape columns fill the row's own
    empty ones (a row's stated columns override the named shape). Unknown names: one Problem each
    (file, line, column 'shape') naming the closest shipped names."""
    if "shape" not in frame.columns or shapes is None or not shapes.height:
        return frame, []
    forms = _names(shapes).select("key", pl.col("model").alias("_shape_model"))
    f = frame.with_columns(pl.col("shape").map_elements(_key, return_dtype=pl.Utf8).alias("key")).join(
        forms, on="key", how="left").drop("key")
    problems = [Problem(path, r["source_line"] if "source_line" in f.columns else None, "shape",
                        f"{r['shape']!r} is not a shape in data/throughput/model_shapes.csv; expected a model or canonical "
                        f"name there, e.g. {', '.join(closest_shape_names(r['shape'], shapes))}")
                for r in f.filter(pl.col("shape").is_not_null() & pl.col("_shape_model").is_null()).iter_rows(named=True)]
    vals = shape_values(shapes).unique("model", keep="first")
    vals = vals.rename({c: f"_named_{c}" for c in vals.columns if c != "model"}).rename({"model": "_shape_model"})
    f = f.join(vals, on="_shape_model", how="left")
    cols = [c.removeprefix("_named_") for c in vals.columns if c != "_shape_model"]
    f = f.with_columns(*[(pl.coalesce(pl.col(c).cast(pl.Float64), f"_named_{c}") if c in frame.columns
                          else pl.col(f"_named_{c}")).alias(c) for c in cols])
    return f.drop([c for c in f.columns if c.startswith("_named_")] + ["_shape_model"]), problems
