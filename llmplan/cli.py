"""The `llmplan` command line (typer + rich). Commands that only read the warehouse never
import Prefect: a what-if answers in well under a second."""

import json
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from llmplan.errors import LlmplanError

app = typer.Typer(help="Plan LLM pretraining from data: tokens, bytes per language, GPU-hours, days, cost, memory, loss. "
                       "Every formula and its source: docs/methods.md in the llmplan repository.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
console = Console()
err = Console(stderr=True)

WAREHOUSE_HELP = "DuckDB warehouse file (default $LLMPLAN_WAREHOUSE or data/warehouse.duckdb)"


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _json_value(v):
    """JSON for what json can't encode: DuckDB's HUGEINT (count_if, sum of integers) arrives as a
    Decimal and must stay a number; dates and the rest become strings."""
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return str(v)


def _flat(df):
    """CSV holds no nested values: lists, structs and maps become JSON text."""
    import polars as pl

    nested = [c for c, t in df.schema.items() if t.is_nested() or t == pl.Object]
    return df.with_columns(
        pl.Series(c, [None if v is None else json.dumps(v, default=_json_value) for v in df[c].to_list()], dtype=pl.Utf8)
        for c in nested)


def _print_frame(df, fmt: str = "table", title: str | None = None) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(df.to_dicts(), default=_json_value, indent=1) + "\n")
    elif fmt == "csv":
        sys.stdout.write(_flat(df).write_csv())
    else:
        t = Table(title=title, show_lines=False)
        for c in df.columns:
            t.add_column(c, overflow="fold")
        for r in df.iter_rows():
            t.add_row(*["" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in r])
        console.print(t)


def _prefect_env() -> None:
    """Analytics off; give a first-time temporary server (fresh database) time to migrate."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


# What a full run imports, stage by stage (~2.5 s on a 2-core machine, Prefect's included).
PRELOAD = ("flows.nightly", "pandas", "pandera.polars", "scipy.optimize", "altair", "vl_convert", "jsonschema",
           "threadpoolctl", "llmplan.efficiency", "llmplan.step", "llmplan.plan", "llmplan.report", "llmplan.tracking")


def _start_server_while_importing() -> None:
    """When `llmplan run` will need a temporary Prefect server (no PREFECT_API_URL, no `llmplan
    serve`), start it — the same one Prefect would start on the flow's first API call
    (SubprocessASGIServer, stopped at exit) — on a thread, and import what the run needs while
    it comes up: the server's ~4 s are mostly waiting, so the imports cost no wall time."""
    import importlib
    import threading

    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    thread = None
    if not PREFECT_API_URL.value() and PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        from prefect.server.api.server import SubprocessASGIServer

        def start():
            try:
                SubprocessASGIServer().start()
            except Exception:                            # the flow's own start tries again and reports it
                pass
        thread = threading.Thread(target=start, name="llmplan-prefect-server", daemon=True)
        thread.start()
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:                              # surfaces where the stage imports it
            pass
    if thread is not None:
        thread.join()


def _use_served_api() -> str | None:
    """When `llmplan serve` is serving (its server file names an API that answers) and no
    PREFECT_API_URL is set, use that server, so the run shows in the UI people have open."""
    from llmplan import config

    if os.environ.get("PREFECT_API_URL"):
        return None
    f = config.prefect_home() / config.SERVER_FILE
    try:
        api = json.loads(f.read_text(encoding="utf-8"))["api_url"]
    except (OSError, ValueError, KeyError):
        return None
    if not _healthy(api):
        return None
    os.environ["PREFECT_API_URL"] = api
    return api


@app.command()
def run(
    warehouse: Optional[Path] = typer.Option(None, help=WAREHOUSE_HELP),
    data_dir: Optional[Path] = typer.Option(None, "--data", help="Input folder (default data/)"),
    reports_dir: Optional[Path] = typer.Option(None, "--reports", help="Report folder (default reports/)"),
    targets: Optional[Path] = typer.Option(None, help="Scenario TOML (default data/targets.toml)"),
    report_lang: Optional[str] = typer.Option(None, "--report-lang", help="Language of the report: en or ja "
                                              "(default: report_lang in the scenario, else en)"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON"),
):
    """Run the whole nightly pipeline once (ingest → fit → plan → report) and print the report's path.

    Examples:\n
      llmplan run\n
      llmplan run --report-lang ja\n
      llmplan run --warehouse /tmp/w.duckdb --reports /tmp/reports --json
    """
    if report_lang not in (None, "en", "ja"):
        _fail(LlmplanError(f"--report-lang {report_lang!r}: expected en or ja"))
    _prefect_env()
    served = _use_served_api()
    if served and not as_json:
        console.print(f"using the Prefect server of `llmplan serve` at {served}: this run shows in its UI")
    try:
        _start_server_while_importing()
        from flows.nightly import nightly_refresh
        from llmplan import config
        from llmplan.scenario import load_scenario


        sc = load_scenario(targets) if targets else None
        if sc is None and data_dir:
            sc = load_scenario(config.data_dir(data_dir) / "targets.toml")
        if report_lang:
            sc = (sc or load_scenario(config.data_dir(None) / "targets.toml")).model_copy(update={"report_lang": report_lang})
        result = nightly_refresh(scenario=sc, warehouse=str(warehouse) if warehouse else None,
                                 data_dir=str(data_dir) if data_dir else None, reports_dir=str(reports_dir) if reports_dir else None)
    except LlmplanError as e:
        _fail(e)
    if as_json:
        sys.stdout.write(json.dumps(result, default=str, indent=1) + "\n")
        return
    console.print(f"[bold green]run {result['pipeline_run_id']}[/] {result['status']}"
                  + (f" (results of {result['results_run_id']})" if result["status"] == "reused" else ""))
    console.print(f"warehouse: {result['warehouse']}")
    ing = result["ingest"]
    console.print(f"inputs:    {ing['training_runs']} rows in core.training_runs (curated + Epoch, all domains), "
                  f"{ing['runs_in_fit']} used by the efficiency fit; "
                  f"{sum(ing['excluded'].values())} excluded with a reason (SELECT fit_exclusion_reason, count(*) "
                  "FROM core.training_runs GROUP BY 1)", soft_wrap=True)
    if ing["unmapped_accelerators"]:
        console.print("unmapped accelerator names (kept, not fitted): "
                      + ", ".join(f"{k} × {v}" for k, v in ing["unmapped_accelerators"].items()), soft_wrap=True)
    if result.get("headline"):
        console.print(f"headline:  {result['headline']}")
    console.print(f"report:    {result['report_path']}", soft_wrap=True)


@app.command()
def sql(
    query: str = typer.Argument(..., help="A SQL query (read-only)"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    warehouse: Optional[Path] = typer.Option(None, help=WAREHOUSE_HELP),
):
    """Run a read-only SQL query against the warehouse.

    Examples:\n
      llmplan sql "SELECT * FROM latest_plans LIMIT 5"\n
      llmplan sql "SELECT accelerator, median(utilization) FROM runs_with_efficiency GROUP BY 1" --format csv
    """
    if fmt not in ("table", "csv", "json"):
        _fail(LlmplanError(f"--format must be table, csv or json, got {fmt!r}"))
    try:
        with _open(warehouse) as con:
            df = con.sql(query).pl()
    except LlmplanError as e:
        _fail(e)
    except Exception as e:  # duckdb errors: syntax, missing table, write attempt on a read-only file
        _fail(LlmplanError(str(e)))
    _print_frame(df, fmt)


def main() -> None:  # pragma: no cover
    app()


def _open(warehouse):
    from llmplan import config, warehouse as wh

    return wh.connect_readonly(config.warehouse_path(warehouse))


@app.command()
def predict(
    runs: Path = typer.Option(..., help="CSV of runs (see --per-step for the columns of each form)"),
    per_step: bool = typer.Option(False, "--per-step", help="Predict step throughput for configurations instead of whole runs"),
    framework: Optional[str] = typer.Option(None, help="With --per-step: a framework the fit knows (e.g. nemo, megatron-bridge); "
                                                       "default a new stack, its spread in the band"),
    measured: Optional[Path] = typer.Option(None, help="With --per-step: CSV of your own stack's measured steps (the per-step "
                                                       "columns plus tokens_per_s_per_gpu): calibrates its multiplier"),
    as_json: bool = typer.Option(False, "--json", help="A list of objects with the output keys (floats, unformatted)"),
    warehouse: Optional[Path] = typer.Option(None, help=WAREHOUSE_HELP),
):
    """Predict GPU-hours for whole runs, or step throughput for configurations (--per-step).

    Whole runs: columns model, params_b, active_params_b (optional), tokens_b, gpu_type,
    gpu_count (optional), precision (optional: bf16 | fp8). Output per row: model,
    training_flop, gpu_hours_p10, gpu_hours_p50, gpu_hours_p90, wall_days_p50 (with gpu_count).

    --per-step: columns model, params_b, active_params_b (optional), gpu_type, gpu_count,
    precision, seq_len, global_batch (optional, tokens), tp, pp, ep, cp, vp, micro_batch,
    zero_stage, recompute (optional; no tp = llmplan's own layout), layers, hidden, ffn, heads,
    kv_heads, vocab, experts, top_k, moe_ffn, shared_experts, dense_layers (optional: the model's
    shape; missing = llmplan's rule), shape (optional: a model of data/throughput/model_shapes.csv,
    e.g. DeepSeek-V3, whose columns fill the row's empty ones).
    Output per row: model, tokens_per_s_per_gpu_p10/p50/p90, step_mfu_p50 (6·N + the full
    12·L·s·h attention count, Megatron's convention), step_hfu_p50 (with recompute), mfu_6n_p50,
    the layout and the shape used, bubble_share.

    Examples:\n
      llmplan predict --runs my_runs.csv --json\n
      llmplan predict --per-step --runs configs.csv --json\n
      llmplan predict --per-step --runs configs.csv --measured our_steps.csv

    The step model and its sources: docs/methods.md ("Step physics").
    """
    import polars as pl

    from llmplan import pipeline
    from llmplan.errors import InputError
    from llmplan.ingest import read_one
    from llmplan.schemas import PREDICT_RUNS, PREDICT_STEPS

    try:
        frame = read_one(PREDICT_STEPS if per_step else PREDICT_RUNS, runs)
        with _open(warehouse) as con:
            model, _ = pipeline.load_model(con)
            table = con.sql("SELECT * FROM core.accelerator_aliases").pl()
            acc = con.sql("SELECT * FROM core.accelerators").pl()
            named = con.sql("SELECT * FROM core.model_shapes").pl() if per_step and "shape" in frame.columns else None
        if named is not None:                      # a `shape` column: the named published shapes fill the rows
            from llmplan.shapes import with_named_shapes

            frame, problems = with_named_shapes(frame, named, str(runs))
            if problems:
                raise InputError(problems, consequence=None)
        mapped, problems = _map_accelerators(frame, runs, table)
        if problems:
            raise InputError(problems, consequence=None)
        f = mapped.join(acc.select("accelerator", "peak_flops", "peak_fp8_flops", "memory_bytes", "nvlink_domain"),
                        on="accelerator", how="left")
        from llmplan.step import Chain, check_rows, per_step_frame, predict_steps

        problems = check_rows(f, str(runs))
        if problems:
            raise InputError(problems, consequence=None)
        if per_step:
            if not isinstance(model, Chain):
                raise LlmplanError("this warehouse has no step model yet; run `llmplan run` to fit one")
            step_model, framework = _with_measured(model.step, measured, framework, table, acc)
            out = predict_steps(per_step_frame(f, acc), step_model, framework)
            out = out.select(
                "model", "tokens_per_s_per_gpu_p10", "tokens_per_s_per_gpu_p50", "tokens_per_s_per_gpu_p90", "step_mfu_p50",
                "step_hfu_p50", "mfu_6n_p50", "tp", "pp", "vp", "cp", "ep", "dp", "zero_stage", "micro_batch", "recompute",
                *SHAPE_OUT, *[c for c in MOE_SHAPE_OUT if c in out.columns], "bubble_share")
        else:
            from llmplan.flops import training_flop
            from llmplan.step import IMPUTED_CLUSTER

            active = pl.col("active_params_b") * 1e9 if "active_params_b" in frame.columns else pl.lit(None, pl.Float64)
            g = f.with_columns(
                (pl.col("params_b") * 1e9).alias("params"), active.alias("active_params"), (pl.col("tokens_b") * 1e9).alias("tokens"),
                training_flop(pl.col("params_b") * 1e9, active, pl.col("tokens_b") * 1e9).alias("training_flop"),
                pl.lit(model.year_range[1]).alias("year"),
                (pl.col("gpu_count") if "gpu_count" in frame.columns else pl.lit(None, pl.Float64)).alias("_stated"),
                (pl.col("precision") if "precision" in frame.columns else pl.lit(None, pl.Utf8)).fill_null("bf16").alias("_prec"))
            g = g.with_columns(pl.coalesce("_stated", pl.lit(float(IMPUTED_CLUSTER))).cast(pl.Int64).alias("cluster_gpus"),
                               pl.coalesce("_stated", pl.lit(float(IMPUTED_CLUSTER))).alias("gpu_count"))
            if isinstance(model, Chain):
                from llmplan.step import accelerator_columns

                spec = accelerator_columns(acc)
                g = g.drop([c for c in spec.columns if c != "accelerator" and c in g.columns]).join(spec, on="accelerator", how="left")
                parts = [model.predict(part, precision=prec) for (prec,), part in g.group_by("_prec", maintain_order=True)]
                p = pl.concat(parts, how="diagonal_relaxed")
            else:
                p = model.predict(g).with_columns(pl.col("gpu_count").alias("useful_gpus"))
            out = p.sort("source_line").with_columns(
                pl.when(pl.col("_stated").is_not_null()).then(pl.col("gpu_hours_p50") / pl.col("useful_gpus") / 24.0)
                .alias("wall_days_p50")
            ).select("model", "training_flop", "gpu_hours_p10", "gpu_hours_p50", "gpu_hours_p90", "wall_days_p50")
    except LlmplanError as e:
        _fail(e)
    if as_json:
        sys.stdout.write(json.dumps(out.to_dicts(), indent=1) + "\n")
        return
    from llmplan.units import fmt_count, fmt_days, fmt_sci

    if per_step:
        t = Table(title="Predicted step throughput (tokens/s per accelerator)")
        for c in ("model", "p10", "p50", "p90", "MFU / HFU p50", "layout tp·pp·cp·ep·dp (vp, mb, ZeRO, recompute)",
                  "shape L·h·ffn·heads/kv·V (experts, top-k)"):
            t.add_column(c, overflow="fold")
        for r in out.iter_rows(named=True):
            t.add_row(r["model"], fmt_count(r["tokens_per_s_per_gpu_p10"]), fmt_count(r["tokens_per_s_per_gpu_p50"]),
                      fmt_count(r["tokens_per_s_per_gpu_p90"]), f"{r['step_mfu_p50']:.0%} / {r['step_hfu_p50']:.0%}",
                      f"{r['tp']}·{r['pp']}·{r['cp']}·{r['ep']}·{r['dp']} ({r['vp']}, {r['micro_batch']}, {r['zero_stage']}, {r['recompute']})",
                      _shape_text(r))
        console.print(t)
        return
    t = Table(title="Predicted GPU-hours (whole run)")
    for c in ("model", "training compute", "GPU-hours p10", "p50", "p90", "wall days p50"):
        t.add_column(c, overflow="fold")
    for r in out.iter_rows(named=True):
        t.add_row(r["model"], fmt_sci(r["training_flop"], "FLOP"), fmt_count(r["gpu_hours_p10"]), fmt_count(r["gpu_hours_p50"]),
                  fmt_count(r["gpu_hours_p90"]), fmt_days(r["wall_days_p50"]) if r["wall_days_p50"] is not None else "–")
    console.print(t)


SHAPE_OUT = ("layers", "hidden", "ffn", "heads", "kv_heads", "vocab", "experts", "top_k")
MOE_SHAPE_OUT = ("moe_ffn", "shared_experts", "dense_layers", "head_dim")


def _shape_text(r: dict) -> str:
    text = f"{r['layers']:.0f}·{r['hidden']:.0f}·{r['ffn']:.0f}·{r['heads']:.0f}/{r['kv_heads']:.0f}·{r['vocab']:.0f}"
    if not (r.get("experts") and r["experts"] > 1):
        return text
    moe = f"{r['experts']:.0f}, {r['top_k']:.0f}"
    if r.get("moe_ffn") is not None:        # expert width, shared experts, dense layers where the row carries them
        moe += (f"; expert ffn {r['moe_ffn']:.0f}, {r.get('shared_experts') or 0:.0f} shared, "
                f"{r.get('dense_layers') or 0:.0f} dense layers")
    return text + f" ({moe})"


def _map_accelerators(frame, path: Path, table):
    """(rows with `accelerator` from their gpu_type, a Problem per row whose name the table lacks —
    resolve() words it and lists the known names)."""
    import polars as pl

    from llmplan.accelerators import normalise, resolve
    from llmplan.errors import Problem

    mapped = normalise(frame, "gpu_type", table)
    problems = []
    for r in mapped.filter(pl.col("accelerator").is_null()).iter_rows(named=True):   # only the bad rows: words, not maths
        try:
            resolve(r["gpu_type"], table)
        except LlmplanError as e:
            problems.append(Problem(str(path), r["source_line"], "gpu_type", str(e)))
    return mapped, problems


def _with_measured(step_model, measured: Path | None, framework: str | None, table, acc):
    """The step model and the framework plans use: `--measured` rows calibrate their stack (named
    by --framework, else 'measured'); `--framework` alone must be one the fit knows."""
    import polars as pl

    from llmplan.errors import InputError, Problem
    from llmplan.ingest import read_one
    from llmplan.schemas import PREDICT_STEPS
    from llmplan.step import check_rows, laid_rows, per_step_frame

    if measured is None:
        if framework and framework not in step_model.frameworks:
            raise LlmplanError(f"--framework {framework!r} is not in the fit; known: {', '.join(step_model.frameworks)} "
                               "(or give --measured rows of your own stack)")
        return step_model, framework
    rows = read_one(PREDICT_STEPS, measured)
    if "tokens_per_s_per_gpu" not in rows.columns:
        problems = [Problem(str(measured), 1, "tokens_per_s_per_gpu", "no such column; expected the measured tokens/s per accelerator")]
    else:
        problems = [Problem(str(measured), r["source_line"], "tokens_per_s_per_gpu", "empty; expected the measured tokens/s per "
                            "accelerator of this configuration")
                    for r in rows.filter(pl.col("tokens_per_s_per_gpu").is_null()).iter_rows(named=True)]
    mapped, bad_gpu = _map_accelerators(rows, measured, table)
    problems += bad_gpu
    if not problems:
        problems = check_rows(mapped.join(acc.select("accelerator", "peak_fp8_flops"), on="accelerator", how="left"), str(measured))
    if problems:
        raise InputError(problems, consequence=None)
    name = framework or "measured"
    f = per_step_frame(mapped, acc)
    if "tp" not in f.columns or f["tp"].is_null().any():
        raise InputError([Problem(str(measured), r["source_line"], "tp", "empty; a measured row needs the layout it ran "
                                  "(tp, pp; optional cp, ep, vp, micro_batch, zero_stage, recompute)")
                          for r in f.filter(pl.col("tp").is_null() if "tp" in f.columns else pl.lit(True)).iter_rows(named=True)],
                         consequence=None)
    return step_model.calibrate(laid_rows(f).with_columns(pl.lit(name).alias("framework")), name), name


def _parse_pairs(text: str, option: str, example: str, value) -> dict:
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise LlmplanError(f"cannot read {option} {text!r}: expected language=value pairs, e.g. {example}")
        k, v = part.split("=", 1)
        out[k.strip()] = value(v.strip(), k.strip())
    return out


def _parse_mix(text: str) -> dict[str, float]:
    def share(v, k):
        try:
            return float(v)
        except ValueError:
            raise LlmplanError(f"cannot read --mix share {v!r} for {k!r}: expected a number") from None
    return _parse_pairs(text, "--mix", "ja=0.4,en=0.4,code=0.2", share)


def _parse_unique(text: str | None) -> dict[str, str]:
    from llmplan.units import parse_size

    def size(v, k):
        parse_size(v, f"--unique value for {k!r}")
        return v
    return _parse_pairs(text, "--unique", "ja=300B,en=5T", size) if text else {}


@app.command()
def plan(
    params: Optional[str] = typer.Option(None, help="Model size: 125M, 10B, 1.5T, 7e9 (omit for the inverse question)"),
    gpu: str = typer.Option("H100-80GB", help="Accelerator (name or alias from the accelerator table)"),
    gpus: Optional[int] = typer.Option(None, min=1, help="Cluster size in accelerators (default 8 when neither --gpus "
                                                         "nor --days is given; with --days and no --gpus: the fewest that finish in time)"),
    days: Optional[float] = typer.Option(None, min=0.001, help="Days available: the deadline (with --params), or the time you have (inverse plan)"),
    budget_usd: Optional[float] = typer.Option(None, min=0.01, help="Budget in USD: a cap (with --params) or what you have (inverse plan)"),
    tokens: Optional[str] = typer.Option(None, help="Training tokens, e.g. 200B (default: from --policy)"),
    active_params: Optional[str] = typer.Option(None, help="Mixture of experts: active parameters, e.g. 37B (FLOPs on these, "
                                                           "memory on --params, expert parallelism for the rest)"),
    precision: str = typer.Option("bf16", help="bf16 | fp8 (FP8 against the accelerator's FP8 peak)"),
    global_batch: Optional[str] = typer.Option(None, help="Tokens per optimizer step, e.g. 4M (default: DeepSeek LLM's "
                                                          "B_opt = 0.2920·C^0.3271)"),
    policy: str = typer.Option("chinchilla", help="chinchilla | compute-optimal | overtrain | inference-aware | fixed "
                                                  "(fixed: the tokens of --tokens, 2T when not given)"),
    mix: str = typer.Option("en=1.0", help="Language mixture, e.g. ja=0.4,en=0.4,code=0.2"),
    unique: Optional[str] = typer.Option(None, help="Unique tokens available per language, e.g. ja=300B,en=5T (epoch checks)"),
    seq_len: int = typer.Option(4096, min=128, help="Sequence length"),
    confidence: str = typer.Option("p50", help="p50 | p90: the quantile --days and --budget-usd must hold at"),
    flash_attention: bool = typer.Option(True, "--flash-attention/--no-flash-attention",
                                         help="Memory: attention scores not stored (FlashAttention)"),
    law: str = typer.Option("auto", help="Scaling law: auto | besiroglu2024 | hoffmann2022 | user"),
    price: Optional[float] = typer.Option(None, min=0.0, help="USD per accelerator-hour (overrides the table)"),
    storage_gbps: float = typer.Option(1.0, help="Checkpoint write bandwidth per 8-accelerator node, GB/s (goodput; "
                                                 "default: Llama 3's 2 TB/s for 2,048 nodes)"),
    restart_minutes: float = typer.Option(11.0, help="Minutes to restart after an interruption (goodput)"),
    layers: Optional[int] = typer.Option(None, min=1, help="Model shape: layers (default: llmplan's rule from the size; "
                                                          "docs/methods.md)"),
    hidden: Optional[int] = typer.Option(None, min=64, help="Model shape: hidden size"),
    ffn: Optional[int] = typer.Option(None, min=64, help="Model shape: MLP inner size (SwiGLU)"),
    heads: Optional[int] = typer.Option(None, min=1, help="Model shape: attention heads"),
    kv_heads: Optional[int] = typer.Option(None, min=1, help="Model shape: key/value heads (grouped-query attention)"),
    vocab: Optional[int] = typer.Option(None, min=256, help="Vocabulary size (default: the shape rule's, 128,256)"),
    experts: Optional[int] = typer.Option(None, min=1, help="Mixture of experts: experts per layer (with --active-params)"),
    top_k: Optional[int] = typer.Option(None, min=1, help="Mixture of experts: experts each token uses"),
    moe_ffn: Optional[int] = typer.Option(None, min=16, help="Mixture of experts: each expert's MLP inner size (default: "
                                                            "solved so the total and active counts hold)"),
    shared_experts: Optional[int] = typer.Option(None, min=0, help="Mixture of experts: always-active experts per MoE layer "
                                                                   "(default: 1 from 64 experts up or with top-1, else 0)"),
    dense_layers: Optional[int] = typer.Option(None, min=0, help="Mixture of experts: layers with a dense MLP (default 0)"),
    shape_name: Optional[str] = typer.Option(None, "--shape", help="A published shape by name, e.g. DeepSeek-V3, 'Llama 4 Scout' "
                                                              "(data/throughput/model_shapes.csv: every column incl. MLA); "
                                                              "the shape options above override it"),
    framework: Optional[str] = typer.Option(None, help="Your training stack, if the fit knows it (e.g. nemo); default a new "
                                                       "stack, the between-framework spread in the band"),
    measured: Optional[Path] = typer.Option(None, help="CSV of your stack's measured steps (per-step columns + "
                                                       "tokens_per_s_per_gpu): calibrates its multiplier for this plan"),
    pp_schedule: Optional[str] = typer.Option(None, help="Pipeline schedule your stack runs: 1f1b | zero-bubble | dualpipe "
                                                         "(default: interleaved 1F1B, virtual stages searched)"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
    warehouse: Optional[Path] = typer.Option(None, help=WAREHOUSE_HELP),
):
    """One plan from the latest fits (no orchestrator start-up), or the inverse question.

    Examples:\n
      llmplan plan --params 10B --gpu H100-80GB --gpus 20\n
      llmplan plan --params 7B --gpu A100 --days 30 --confidence p90 --mix ja=0.4,en=0.4,code=0.2 --json\n
      llmplan plan --gpu H100 --gpus 20 --days 15 --budget-usd 20000      (what should we train?)
    """
    from llmplan import plan as planmod
    from llmplan.scenario import Scenario
    from llmplan.units import parse_size

    try:
        import polars as pl

        from llmplan import pipeline

        if confidence not in ("p50", "p90"):
            raise LlmplanError(f"--confidence must be p50 or p90, got {confidence!r}")
        if precision not in ("bf16", "fp8"):
            raise LlmplanError(f"--precision must be bf16 or fp8, got {precision!r}")
        if pp_schedule is not None and pp_schedule not in ("1f1b", "zero-bubble", "dualpipe"):
            raise LlmplanError(f"--pp-schedule must be 1f1b, zero-bubble or dualpipe, got {pp_schedule!r}")
        for opt, v in (("--storage-gbps", storage_gbps), ("--restart-minutes", restart_minutes)):
            if not v > 0:
                raise LlmplanError(f"{opt} must be greater than 0, got {v:g}")
        fraction = None
        if active_params:
            if not params:
                raise LlmplanError("--active-params needs --params (the total)")
            fraction = parse_size(active_params, "--active-params") / parse_size(params, "--params")
            if fraction > 1:
                raise LlmplanError(f"--active-params {active_params} exceeds --params {params}: active parameters are a part of the total")
        with _open(warehouse) as con:
            model, run_id, acc, the_law, bpt = pipeline.planning_inputs(con, gpu, law)
            evidence = pipeline.evidence_of(con, run_id)
        name = acc["accelerator"][0]
        if price is not None:
            acc = acc.with_columns(pl.lit(price).alias("usd_per_hour"))
        options = {k: v for k, v in (("layers", layers), ("hidden", hidden), ("ffn", ffn), ("heads", heads),
                                     ("kv_heads", kv_heads), ("top_k", top_k), ("moe_ffn", moe_ffn),
                                     ("shared_experts", shared_experts), ("dense_layers", dense_layers)) if v is not None}
        shape = dict(options)
        if experts is not None:
            shape["experts"] = experts
        if vocab is not None:
            shape["vocab_size"] = vocab
        if shape_name is not None:
            shape["shape_columns"] = _named_shape_columns(shape_name, warehouse, experts=experts, top_k=top_k, vocab=vocab)
        if params is not None:
            _check_plan_shape(params, active_params, shape.get("shape_columns", {}), options, experts, vocab, shape_name)
        if measured is not None or framework is not None:
            from llmplan.step import Chain

            if isinstance(model, Chain):
                with _open(warehouse) as con:
                    table = con.sql("SELECT * FROM core.accelerator_aliases").pl()
                    accs = con.sql("SELECT * FROM core.accelerators").pl()
                stepm, framework = _with_measured(model.step, measured, framework, table, accs)
                model = Chain(model.whole, stepm, model.residual)
        base = Scenario(accelerators=[name], mixture=_parse_mix(mix), unique_tokens=_parse_unique(unique), seq_len=seq_len,
                        framework=framework, **shape,
                        scaling_law=law, flash_attention=flash_attention, confidence=confidence, precision=precision,
                        active_fraction=fraction, global_batch_tokens=global_batch, storage_gbps=storage_gbps,
                        restart_minutes=restart_minutes, pp_schedule=pp_schedule)
        if params is None:
            if gpus is None or (days is None and budget_usd is None):
                raise LlmplanError("give --params for a plan, or --gpus with --days and/or --budget-usd for the inverse question")
            out = planmod.inverse_plan(model, acc, gpus, the_law, days=days, budget_usd=budget_usd, sc=base, bpt=bpt)
        else:
            parse_size(params, "--params")            # a malformed size fails here, clearly
            pol = "fixed" if tokens else policy
            sc = base.model_copy(update={"targets": [params], "cluster_sizes": [gpus or 8], "policies": [pol],
                                         "fixed_tokens": tokens or "2T", "deadline_days": days, "budget_usd": budget_usd})
            sc = Scenario(**sc.model_dump())            # validate the combined values
            if gpus is None and days:
                sc = sc.model_copy(update={"cluster_sizes": [planmod.fewest_accelerators(sc, model, acc, the_law, days, confidence)]})
            plans, langs = planmod.build_plans(sc, model, acc, the_law, bpt)
            r = plans.row(0, named=True)
            out = {k: r[k] for k in ("params", "tokens", "training_flop", "accelerator", "cluster_gpus", "gpu_hours_p10",
                                     "gpu_hours_p50", "gpu_hours_p90", "wall_days_p10", "wall_days_p50", "wall_days_p90",
                                     "cost_usd_p10", "cost_usd_p50", "cost_usd_p90", "usd_per_hour", "memory_per_gpu_gib",
                                     "min_gpus_for_memory", "fits_in_memory", "checkpoint_gib", "predicted_loss",
                                     "predicted_loss_p10", "predicted_loss_p90", "loss_law", "meets_deadline", "within_budget",
                                     "max_epochs", "warnings")}
            out.update({k: r.get(k) for k in ("vp", "cp", "micro_batch", "step_hfu_p50", "step_seconds_p50", "framework", "pp_schedule",
                                              "step_tokens_per_s_per_gpu_p50", "whole_run_multiplier", *SHAPE_OUT)})
            out.update({k: r.get(k) for k in MOE_SHAPE_OUT})
            out["shape_source"] = (f"--shape {shape_name}" if shape_name else None)
            out.update({k: r.get(k) for k in ("active_params", "precision", "tp", "pp", "ep", "dp", "zero_stage", "recompute",
                                              "global_batch_tokens", "step_mfu_p50", "goodput_p50", "max_useful_gpus",
                                              "useful_gpus", "tokens_per_s_per_gpu_p50", "billed_gpu_hours_p50")})
            out.update({k: r.get(k) for k in ("goodput_p10", "goodput_p90", "goodput_physics", "goodput_residual",
                                              "interruptions_expected", "hours_lost_interruptions", "checkpoint_overhead",
                                              "checkpoint_interval_hours", "mtbf_hours")})
            out["storage_gbps"], out["restart_minutes"] = sc.storage_gbps, sc.restart_minutes
            out["policy"] = pol
            out["confidence"] = confidence
            out["cluster_chosen_for_days"] = gpus is None and bool(days)
            out["bytes_per_language"] = {x["language"]: x["bytes_p50"] for x in langs.iter_rows(named=True)}
            out["tokens_per_language"] = {x["language"]: x["tokens"] for x in langs.iter_rows(named=True)}
            out["bytes_per_token_source"] = {x["language"]: x["bytes_per_token_source"] for x in langs.iter_rows(named=True)}
            from llmplan.evidence import with_caveats

            out["caveats"] = with_caveats(plans.head(1), evidence)["caveats"][0].to_list()   # outside the evidence, in words
    except LlmplanError as e:
        _fail(e)
    except ValidationError as e:   # the scenario built from the options
        from llmplan.scenario import CLI_OPTIONS, explain

        _fail(LlmplanError(explain(e, CLI_OPTIONS)))
    if as_json:
        sys.stdout.write(json.dumps(out, indent=1, default=str) + "\n")
        return
    _print_plan(out)


def _named_shape_columns(name: str, warehouse, experts=None, top_k=None, vocab=None) -> dict[str, float]:
    """`--shape NAME`: the named row of core.model_shapes (llmplan.shapes.named_shape), with --experts,
    --top-k and --vocab overriding its columns (the other shape options override it in Scenario.shape)."""
    from llmplan.shapes import named_shape

    with _open(warehouse) as con:
        shapes = con.sql("SELECT * FROM core.model_shapes").pl()
    cols = named_shape(name, shapes, "--shape")
    cols.update({k: float(v) for k, v in (("experts", experts), ("top_k", top_k), ("vocab", vocab)) if v is not None})
    return cols


def _check_plan_shape(params: str, active_params: str | None, named: dict, options: dict, experts, vocab,
                      shape_name: str | None) -> None:
    """A shape given by options or --shape that contradicts --params/--active-params (llmplan.perf.shapes.check_shape):
    one sentence naming the options; nothing is planned."""
    from llmplan.perf.shapes import check_shape, complete_shape
    from llmplan.units import parse_size

    given = {**named, **{k: float(v) for k, v in options.items()}}
    if experts is not None:
        given["experts"] = float(experts)
    if vocab is not None:
        given["vocab"] = float(vocab)
    if not ({"layers", "hidden", "ffn", "heads", "moe_ffn"} & set(given)):
        return
    n = parse_size(params, "--params")
    a = parse_size(active_params, "--active-params") if active_params else None
    where = f"--shape {shape_name}" if shape_name else "--" + "/--".join(k.replace("_", "-") for k in options if k in
                                                                        ("layers", "hidden", "ffn", "heads", "kv_heads", "moe_ffn",
                                                                         "shared_experts", "dense_layers"))
    msg = check_shape(complete_shape(n, a, given), n, a, where=where)
    if msg:
        raise LlmplanError(msg)


def _print_plan(out: dict) -> None:
    from llmplan.units import fmt_bytes, fmt_count, fmt_days, fmt_params, fmt_sci, fmt_usd

    t = Table(show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    loss = (f"{out['predicted_loss_p50' if 'params_opt_p50' in out else 'predicted_loss']:.3f}"
            + (f" (p10–p90 {out['predicted_loss_p10']:.3f}–{out['predicted_loss_p90']:.3f})" if out.get("predicted_loss_p10") else ""))
    if "params_opt_p50" in out:
        limit = (f"; the budget stops the run after {fmt_days(out['days'])}" if out["limited_by"] == "budget"
                 and out.get("days_available") else "")
        t.add_row("budget", f"{out['gpus']} × {out['accelerator']} for {fmt_days(out['days'])} = {fmt_count(out['gpu_hours'], 'GPU-hours')}"
                  + (f" ({fmt_usd(out['cost_usd'])})" if out.get("cost_usd") else "") + limit)
        t.add_row("compute (p10/p50/p90)", " / ".join(fmt_sci(out[f"compute_flop_{q}"], "FLOP") for q in ("p10", "p50", "p90")))
        t.add_row("compute-optimal size", f"{fmt_params(out['params_opt_p50'])} ({fmt_params(out['params_opt_p10'])}–{fmt_params(out['params_opt_p90'])})")
        t.add_row("tokens", f"{fmt_sci(out['tokens_opt_p50'])} ({fmt_sci(out['tokens_opt_p10'])}–{fmt_sci(out['tokens_opt_p90'])})")
        t.add_row("expected loss", f"{loss} ({out['law']}; interval from {out['loss_interval']})")
    else:
        moe = out.get("active_params") and out["active_params"] < out["params"]
        t.add_row("model", f"{fmt_params(out['params'])} parameters"
                  + (f", {fmt_params(out['active_params'])} active" if moe else "") + f", {out['policy']}")
        t.add_row("tokens", fmt_sci(out["tokens"]))
        t.add_row("training compute", fmt_sci(out["training_flop"], "FLOP"))
        t.add_row("GPU-hours", f"{fmt_count(out['gpu_hours_p50'])} (p10 {fmt_count(out['gpu_hours_p10'])}, p90 {fmt_count(out['gpu_hours_p90'])})")
        t.add_row("GPU-days", fmt_count(out["gpu_hours_p50"] / 24))
        t.add_row("wall-clock", f"{fmt_days(out['wall_days_p50'])} on {out['cluster_gpus']} × {out['accelerator']} "
                  f"({fmt_days(out['wall_days_p10'])}–{fmt_days(out['wall_days_p90'])})"
                  + (f"; the fewest that finish in time at {out['confidence']}" if out.get("cluster_chosen_for_days") else ""))
        t.add_row("cost", f"{fmt_usd(out['cost_usd_p50'])} ({fmt_usd(out['cost_usd_p10'])}–{fmt_usd(out['cost_usd_p90'])})"
                  if out["cost_usd_p50"] else "no price for this accelerator: pass --price")
        t.add_row("expected loss", f"{loss} ({out['loss_law']})")
        if out.get("tp"):
            t.add_row("shape", "layers · hidden · ffn · heads/kv · vocab" + (" (experts, top-k)" if (out.get("experts") or 1) > 1 else "")
                      + " " + _shape_text(out)
                      + (f" — {out['shape_source']}" if out.get("shape_source") else " — llmplan's rule unless given"))
            t.add_row("layout", f"TP {out['tp']} × PP {out['pp']}" + (f" (virtual {out['vp']})" if (out.get("vp") or 1) > 1 else "")
                      + (f" ({out['pp_schedule']})" if out.get("pp_schedule") else "")
                      + (f" × CP {out['cp']}" if (out.get("cp") or 1) > 1 else "") + f" × DP {out['dp']}"
                      + (f" (EP {out['ep']})" if out["ep"] > 1 else "")
                      + f", ZeRO-{out['zero_stage']}, micro-batch {out.get('micro_batch')}, recompute {out['recompute']}, {out['precision']}")
            t.add_row("global batch", f"{fmt_count(out['global_batch_tokens'])} tokens; at most {out['max_useful_gpus']:,} "
                      "accelerators busy")
            t.add_row("throughput", f"{fmt_count(out['tokens_per_s_per_gpu_p50'])} tokens/s per accelerator over the run = step "
                      f"{fmt_count(out.get('step_tokens_per_s_per_gpu_p50') or 0)} (MFU {out['step_mfu_p50']:.0%}, HFU "
                      f"{(out.get('step_hfu_p50') or 0):.0%}; {out.get('framework') or 'a new stack'}) × whole-run multiplier "
                      f"{(out.get('whole_run_multiplier') or 1):.2f} × goodput {(out.get('goodput_p50') or 1):.0%}")
    t.add_row("memory", f"{out['memory_per_gpu_gib']:.1f} GiB per accelerator; needs ≥ {out['min_gpus_for_memory']} accelerators"
              if out["min_gpus_for_memory"] else "does not fit at any count")
    t.add_row("checkpoint", f"{out['checkpoint_gib']:,.0f} GiB")
    if out.get("interruptions_expected") is not None:
        t.add_row("goodput", f"{out['goodput_p50']:.1%} (p10–p90 {out['goodput_p10']:.1%}–{out['goodput_p90']:.1%}): "
                  f"{out['interruptions_expected']:.1f} interruptions expected (one every {out['mtbf_hours']:,.1f} h), "
                  f"{out['hours_lost_interruptions']:,.1f} h lost to them; checkpoints every "
                  f"{out['checkpoint_interval_hours'] * 60:,.0f} min cost {out['checkpoint_overhead']:.2%}; residual ×{out['goodput_residual']:.2f}")
    for lang, b in out["bytes_per_language"].items():
        t.add_row(f"text: {lang}", f"{fmt_sci(out['tokens_per_language'][lang])} tokens ≈ {fmt_bytes(b)}")
        t.add_row("", f"bytes/token from {out['bytes_per_token_source'][lang]}")
    if out.get("warnings"):
        t.add_row("warnings", out["warnings"])
    for c in out.get("caveats") or []:
        t.add_row("caveat", c)
    console.print(t)


@app.command("fit-scaling")
def fit_scaling(
    losses: Path = typer.Option(..., help="CSV with columns params, tokens, loss (one row per finished run)"),
    as_json: bool = typer.Option(False, "--json", help="JSON: E, A, B, alpha, beta, n_points, *_ci [lo, hi], warnings"),
    bootstrap: int = typer.Option(200, min=20, max=5000, help="Bootstrap resamples for the intervals"),
    warehouse: Optional[Path] = typer.Option(None, help=WAREHOUSE_HELP),
):
    """Fit L(N, D) = E + A/N^α + B/D^β to your own runs and store it (used by compute-optimal plans).

    A fit the data cannot identify (all runs at one tokens-per-parameter ratio, an estimate on its
    search bound, an exponent with a very wide interval) is refused with the reason, and nothing
    is stored: plans keep the law they used.

    Example:\n
      llmplan fit-scaling --losses small_runs.csv --json
    """
    from datetime import datetime, timezone

    import polars as pl

    from llmplan import config, warehouse as wh
    from llmplan.ingest import read_one
    from llmplan.scaling import fit_law
    from llmplan.schemas import SCALING_LOSSES

    try:
        f = read_one(SCALING_LOSSES, losses, consequence="nothing was stored")
        fit = fit_law(f["params"].to_numpy(), f["tokens"].to_numpy(), f["loss"].to_numpy(), n_boot=bootstrap)
        if not fit.identifiable:
            raise LlmplanError(f"{losses}: these {f.height} runs cannot identify the scaling law, so it was not stored "
                               "and plans keep using the law they had:\n" + "\n".join(f"  - {p}" for p in fit.problems))
        law, ci = fit.law, fit.ci
        out = {"E": law.E, "A": law.A, "B": law.B, "alpha": law.alpha, "beta": law.beta, "n_points": f.height,
               **{f"{k}_ci": list(v) for k, v in ci.items()}, "warnings": fit.warnings}
        path = config.warehouse_path(warehouse)
        now = datetime.now(timezone.utc)
        fit_id = f"fit-scaling-{now:%Y%m%dT%H%M%S%f}"
        row = pl.DataFrame([{"pipeline_run_id": fit_id, "name": "user", "E": law.E, "A": law.A, "B": law.B,
                             "alpha": law.alpha, "beta": law.beta, **{f"{k}_lo": v[0] for k, v in ci.items()},
                             **{f"{k}_hi": v[1] for k, v in ci.items()}, "n_points": f.height,
                             "source": f"llmplan fit-scaling {losses.name}", "fitted_at": now, "fit_id": fit_id}])
        draws = pl.DataFrame(fit.draws, schema=["E", "A", "B", "alpha", "beta"], orient="row").with_columns(
            pl.lit(fit_id).alias("fit_id"), pl.int_range(pl.len()).cast(pl.Int32).alias("draw"))
        with wh.writer_lock(path), wh.transaction_file(path) as con:
            wh.append(con, "fits.scaling_law", row)
            wh.append(con, "fits.scaling_law_draws", draws)
    except LlmplanError as e:
        _fail(e)
    if as_json:
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
        return
    t = Table(title=f"L(N, D) = E + A/N^α + B/D^β fitted on {f.height} runs (95% bootstrap intervals)")
    for c in ("parameter", "estimate", "interval"):
        t.add_column(c)
    for k in ("E", "A", "B", "alpha", "beta"):
        t.add_row(k, f"{out[k]:.4g}", f"[{ci[k][0]:.4g}, {ci[k][1]:.4g}]")
    console.print(t)
    for w in fit.warnings:
        err.print(f"[yellow]warning:[/] {w}")
    console.print("stored in fits.scaling_law (name 'user'); compute-optimal plans and the next `llmplan run` use it")


@app.command()
def track(
    log: Optional[Path] = typer.Option(None, "--log", help="Progress log: JSON Lines or CSV (time, step, tokens[, loss]) "
                                                         "or a TensorBoard event file/folder"),
    run: Optional[str] = typer.Option(None, "--run", help="A run folder's name under data/runs_in_progress/ (its run.toml and log)"),
    run_toml: Optional[Path] = typer.Option(None, "--run-toml", help="The run's run.toml (default: beside the log)"),
    params: Optional[str] = typer.Option(None, help="Model size, e.g. 7B (instead of a run.toml)"),
    active_params: Optional[str] = typer.Option(None, help="Mixture of experts: active parameters"),
    tokens: Optional[str] = typer.Option(None, help="Planned training tokens, e.g. 1T"),
    gpu: str = typer.Option("H100-80GB", help="Accelerator"),
    gpus: Optional[int] = typer.Option(None, min=1, help="Accelerators in the run"),
    start: Optional[str] = typer.Option(None, help="When the run started, ISO 8601 (default: the log's first line)"),
    deadline: Optional[str] = typer.Option(None, help="When it must finish, ISO 8601 (UTC unless a zone is given)"),
    price: Optional[float] = typer.Option(None, min=0.0, help="USD per accelerator-hour (default: the accelerator table)"),
    now: Optional[str] = typer.Option(None, help="Forecast as of this time, ISO 8601 (default: now; a log whose last line is "
                                                 "older than 3 logging intervals is stale: the run is taken as stopped since then)"),
    data_dir: Optional[Path] = typer.Option(None, "--data", help="Input folder (default data/), for --run"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
    warehouse: Optional[Path] = typer.Option(None, help=WAREHOUSE_HELP),
):
    """Will the run we started finish on time? Forecast a run in progress from its progress log,
    with its plan (public runs) as the prior.

    Examples:\n
      llmplan track --run simulated-example-7b\n
      llmplan track --log logs/progress.jsonl --params 7B --tokens 1T --gpu H100 --gpus 128 --deadline 2026-12-20 --json\n
      llmplan track --log runs/tb/ --run-toml runs/run.toml
    """
    from datetime import datetime, timezone

    from llmplan import config, pipeline, progress, tracking

    try:
        if run:
            d = config.data_dir(data_dir) / "runs_in_progress" / run
            if not (d / progress.RUN_FILE).exists():
                raise LlmplanError(f"--run {run!r}: no {progress.RUN_FILE} in {d}")
            spec = progress.load_spec(d / progress.RUN_FILE, run)
            log_path = Path(log) if log else progress.find_log(d, spec)
        elif log is None:
            raise LlmplanError("give --log (with --run-toml or --params/--tokens/--gpus) or --run NAME")
        else:
            log_path = Path(log)
            if not log_path.exists():
                raise LlmplanError(f"--log {log}: no such file or folder")
            beside = (log_path if log_path.is_dir() else log_path.parent) / progress.RUN_FILE
            toml = run_toml or (beside if beside.exists() and params is None else None)
            if toml is not None:
                spec = progress.load_spec(Path(toml))
            else:
                missing = [o for o, v in (("--params", params), ("--tokens", tokens), ("--gpus", gpus)) if v is None]
                if missing:
                    raise LlmplanError(f"without a run.toml, give {', '.join(missing)}")
                try:
                    spec = progress.RunSpec(name=log_path.stem if log_path.is_file() else log_path.name, params=params,
                                            active_params=active_params, tokens=tokens, accelerator=gpu, gpus=gpus,
                                            start=start, deadline=deadline, usd_per_gpu_hour=price)
                except ValidationError as e:
                    raise LlmplanError("; ".join(f"--{'-'.join(str(x) for x in err['loc']).replace('_', '-')}: {err['msg']}"
                                                 for err in e.errors())) from e
        when = datetime.now(timezone.utc)
        if now:
            try:
                when = datetime.fromisoformat(now.replace("Z", "+00:00"))
            except ValueError as e:
                raise LlmplanError(f"--now {now!r}: expected ISO 8601, e.g. 2026-12-01T09:00:00Z") from e
            when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        with _open(warehouse) as con:
            inputs = pipeline.tracking_inputs(con)
        fc, _ = pipeline.track_one(inputs, spec, log_path, now=when)
    except LlmplanError as e:                      # InputError too: the file, line and column
        _fail(e)
    out = tracking.as_record(fc)
    if as_json:
        sys.stdout.write(json.dumps(out, indent=1, default=str) + "\n")
        return
    from llmplan.artifacts import track_markdown

    from rich.markdown import Markdown

    console.print(Markdown(track_markdown(fc)))


corpus_app = typer.Typer(help="Measure your corpus: bytes, characters and tokens per language and tokenizer.",
                         no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("scan")
def corpus_scan(
    paths: list[Path] = typer.Argument(..., help="Files or folders (.txt, .jsonl, .parquet; .gz/.zst compressed)"),
    tokenizer: str = typer.Option(..., help="mistral-sp-v1 | tekken | bytes | sp:PATH | hf:PATH | bpe-train:VOCAB"),
    lang: Optional[str] = typer.Option(None, help="Language of every document (else --lang-field or the script detector)"),
    lang_field: Optional[str] = typer.Option(None, help="JSONL/Parquet field holding the language"),
    text_field: str = typer.Option("text", help="JSONL/Parquet field holding the text"),
    split: str = typer.Option("document", help="For .txt: 'document' (one per file) or 'paragraphs'"),
    latin_as: str = typer.Option("en", help="Language code the script detector gives Latin-script text"),
    sample: Optional[float] = typer.Option(None, help="Tokenize a random fraction of documents (0–1] and estimate"),
    seed: int = typer.Option(0, help="Sampling seed"),
    workers: Optional[int] = typer.Option(None, help="Worker processes (default: all cores)"),
    dask_address: Optional[str] = typer.Option(None, envvar="LLMPLAN_DASK_ADDRESS",
                                               help="Run the per-shard tasks on this Dask scheduler (through Prefect)"),
    as_json: bool = typer.Option(False, "--json", help="JSON output, no progress bar"),
    warehouse: Optional[Path] = typer.Option(None, help=WAREHOUSE_HELP),
):
    """Count documents, UTF-8 bytes, characters and tokens per language; store them in the warehouse.

    Examples:\n
      llmplan corpus scan /usr/share/debian-reference/debian-reference.ja.txt.gz --tokenizer mistral-sp-v1 --lang ja\n
      llmplan corpus scan shards/ --tokenizer tekken --lang-field lang --sample 0.05 --json\n
      llmplan corpus scan big.jsonl --tokenizer bpe-train:32000 --dask-address tcp://127.0.0.1:8786
    """
    from llmplan import config
    from llmplan.corpus import Options

    if split not in ("document", "paragraphs"):
        _fail(LlmplanError(f"--split must be 'document' or 'paragraphs', got {split!r}"))
    opts = Options(tokenizer=tokenizer, lang=lang, lang_field=lang_field, text_field=text_field, sample=sample,
                   seed=seed, split=split, latin_as=latin_as)
    wh_path = config.warehouse_path(warehouse)
    try:
        if dask_address:
            _prefect_env()
            from flows.corpus import corpus_stats

            summary = corpus_stats(paths=[str(p) for p in paths], options=dict(opts.__dict__), warehouse=str(wh_path),
                                   dask_address=dask_address)
        else:
            from llmplan.corpus_scan import scan

            if as_json or not console.is_terminal:
                summary = scan([str(p) for p in paths], opts, wh_path, workers)
            else:
                from rich.progress import (BarColumn, DownloadColumn, Progress, TimeRemainingColumn,
                                           TransferSpeedColumn)

                with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                              TransferSpeedColumn(), TimeRemainingColumn(), console=err) as prog:
                    task = prog.add_task("scanning", total=None)
                    summary = scan([str(p) for p in paths], opts, wh_path, workers,
                                   progress=lambda done, total: prog.update(task, completed=done, total=total))
    except LlmplanError as e:
        _fail(e)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=1) + "\n")
        return
    _print_corpus(summary)


def _print_corpus(s: dict) -> None:
    from llmplan.units import fmt_bytes, fmt_count

    t = Table(title=f"{s['files']} file(s), tokenizer {s['tokenizer']}" + (f", sample {s['sample']:g}" if s["sample"] else ""))
    for c in ("language", "docs", "bytes", "chars", "tokens", "bytes/token", "tokens 95% interval"):
        t.add_column(c)
    for r in s["languages"]:
        ci = f"{fmt_count(r['tokens_ci95'][0])}–{fmt_count(r['tokens_ci95'][1])}" if r["tokens_ci95"] else "–"
        t.add_row(r["language"], f"{r['docs']:,}", fmt_bytes(r["bytes"]), f"{r['chars']:,}",
                  fmt_count(r["tokens"]) if r["tokens"] else "–", f"{r['bytes_per_token']:.3f}" if r["bytes_per_token"] else "–", ci)
    console.print(t)
    for e in s["errors"]:
        err.print(f"[yellow]{e['file']}[/]: {e['count']} × {e['kind']} (first at line(s) {', '.join(map(str, e['first_lines'])) or '–'})")
    if s["skipped_unchanged"]:
        console.print(f"unchanged since their last scan (not re-counted): {', '.join(s['skipped_unchanged'])}")


def _healthy(api: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(api.rstrip("/") + "/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@app.command()
def serve(
    port: int = typer.Option(4200, help="Prefect server port on 127.0.0.1 (used when no server is running there)"),
    reports_port: int = typer.Option(8765, help="Port on 127.0.0.1 serving reports/ over HTTP"),
    cron: str = typer.Option("0 3 * * *", help="Nightly schedule (cron)"),
    timezone: str = typer.Option("UTC", help="Time zone of the schedule (IANA name, e.g. Europe/Paris)"),
    home: Optional[Path] = typer.Option(None, help="Prefect home for a server started here (default $LLMPLAN_PREFECT_HOME "
                                                   "or .prefect/ in the project)"),
    warehouse: Optional[Path] = typer.Option(None, help=WAREHOUSE_HELP),
    data_dir: Optional[Path] = typer.Option(None, "--data", help="Input folder (default data/)"),
    reports_dir: Optional[Path] = typer.Option(None, "--reports", help="Report folder (default reports/)"),
):
    """Start a local Prefect server (if none is running), serve the nightly and corpus deployments,
    and serve reports/ over HTTP so the report link in the UI opens with one click.

    Examples:\n
      llmplan serve                              (UI at http://127.0.0.1:4200)\n
      llmplan serve --cron "30 2 * * *" --timezone Asia/Tokyo
    """
    import functools
    import http.server
    import shlex
    import subprocess
    import threading

    from llmplan import config

    _prefect_env()
    home = config.prefect_home(home)
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home))
    api = os.environ.get("PREFECT_API_URL") or f"http://127.0.0.1:{port}/api"
    server = None
    if not _healthy(api):
        if "PREFECT_API_URL" in os.environ:
            _fail(LlmplanError(f"PREFECT_API_URL={api} does not answer; start that server or unset the variable"))
        env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        log = open(home / "server.log", "a")
        server = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        import time

        for _ in range(240):
            if _healthy(api):
                break
            if server.poll() is not None:
                _fail(LlmplanError(f"the Prefect server exited; see {home / 'server.log'}"))
            time.sleep(0.5)
        else:
            server.terminate()
            _fail(LlmplanError(f"the Prefect server did not answer on {api}; see {home / 'server.log'}"))
    os.environ["PREFECT_API_URL"] = api
    reports = config.reports_dir(reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(reports))
    try:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", reports_port), handler)
    except OSError as e:
        if server is not None:
            server.terminate()
        _fail(LlmplanError(f"--reports-port {reports_port}: cannot serve reports there ({e.strerror}); pass a free port"))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    os.environ["LLMPLAN_REPORTS_URL"] = f"http://127.0.0.1:{reports_port}"
    os.environ["LLMPLAN_REPORTS"] = str(reports)
    marker = home / config.SERVER_FILE
    marker.write_text(json.dumps({"api_url": api, "pid": os.getpid()}), encoding="utf-8")
    prefect_cli = shlex.quote(str(Path(sys.executable).with_name("prefect")))
    console.print(f"Prefect UI: [bold]{api.removesuffix('/api')}[/]  ·  reports: http://127.0.0.1:{reports_port}/\n"
                  f"`llmplan run` now uses this server (its runs show in the UI). Trigger a deployment from a shell:\n"
                  f"  PREFECT_API_URL={api} {prefect_cli} deployment run 'nightly_refresh/nightly' --watch\n"
                  f"  PREFECT_API_URL={api} {prefect_cli} deployment run 'what_to_train/what-to-train' "
                  "--params '{\"budget\": {\"gpus\": 20, \"days\": 15}}' --watch", highlight=False, soft_wrap=True)
    from deployments.serve import main as serve_main

    args = ["--cron", cron, "--timezone", timezone, "--reports", str(reports)]
    if warehouse:
        args += ["--warehouse", str(warehouse)]
    if data_dir:
        args += ["--data", str(data_dir)]
    try:
        serve_main(args)
    finally:
        marker.unlink(missing_ok=True)
        httpd.shutdown()
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        console.print("stopped serving; the nightly schedule is still active and its runs wait as Late until "
                      "`llmplan serve` runs again (pause it with `prefect deployment schedule pause` if you mean to)")
