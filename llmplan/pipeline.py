"""The pipeline's stages as plain functions on a DuckDB connection (the flows in flows/ wrap
them as Prefect tasks; tests call them directly). Every stage writes only to the staging copy
it is given: the run is committed as a whole or not at all (llmplan.warehouse.Staging)."""

import hashlib
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from llmplan import efficiency, warehouse
from llmplan.config import code_version
from llmplan.errors import LlmplanError
from llmplan.scaling import SHIPPED_LAWS, Law
from llmplan.scenario import Scenario

CORE_TABLES = ("core.accelerators", "core.accelerator_aliases", "core.training_runs", "core.throughput",
               "core.step_benchmarks", "core.corpus_published", "core.unmapped_accelerators", "core.model_shapes")


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"-{now.microsecond:06d}"


def sync_raw(con: duckdb.DuckDBPyConnection, data: dict) -> dict:
    """raw.* mirrors the input files: rows of files already loaded (same path and hash) stay as
    they are (their loaded_at too); changed or new files are (re)loaded; vanished files leave."""
    from llmplan.ingest import PROVENANCE

    added = {}
    for kd in data.values():
        table = kd.kind.raw_table
        have = set(con.execute(f"SELECT DISTINCT source_file || '|' || file_sha256 FROM {table}").fetchall())
        have = {h[0] for h in have}
        want = {f"{f}|{sha}" for f, sha in kd.files.items()}
        stale = have - want
        for key in stale:
            f, sha = key.split("|", 1)
            con.execute(f"DELETE FROM {table} WHERE source_file = ? AND file_sha256 = ?", [f, sha])
        new = want - have
        if new and kd.raw.height:
            rows = kd.raw.filter(pl.concat_str("source_file", pl.lit("|"), "file_sha256").is_in(list(new)))
            cols = [c.name for c in kd.kind.columns] + list(PROVENANCE)
            warehouse.append(con, table, rows.select(cols))
            added[table] = rows.height
    return added


def ingest(con: duckdb.DuckDBPyConnection, data_dir: Path) -> dict:
    """Read + check every input file, mirror raw.*, rebuild core.*. Raises InputError."""
    from llmplan.ingest import read_all
    from llmplan.transform import build_core

    data = read_all(Path(data_dir))
    added = sync_raw(con, data)
    core = build_core(data)
    for table in CORE_TABLES:
        warehouse.replace_table(con, table, core[table])
    # Keyed by the path inside the data folder: the same inputs in another checkout hash the same.
    root = Path(data_dir).resolve()
    hashes = {Path(f).resolve().relative_to(root).as_posix(): sha for kd in data.values() for f, sha in kd.files.items()}
    from llmplan.progress import input_files             # logs of runs in progress: a new line → a new forecast

    hashes.update({f.resolve().relative_to(root).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
                   for f in input_files(root)})
    # the public interruption rates behind llmplan.goodput's defaults (tests/llmplan/test_goodput.py ties them)
    hashes.update({f.resolve().relative_to(root).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
                   for f in sorted((root / "reliability").glob("*.csv"))})
    runs = core["core.training_runs"]
    return {
        "input_hashes": hashes, "raw_rows_added": added,
        "training_runs": runs.height,
        "runs_in_fit": runs.filter(pl.col("fit_exclusion_reason").is_null()).height,
        "excluded": dict(runs.group_by("fit_exclusion_reason").len().drop_nulls().iter_rows()),
        "unmapped_accelerators": {f"{r['name']} ({r['origin']})": r["n_rows"]
                                  for r in core["core.unmapped_accelerators"].iter_rows(named=True)},
    }


def warehouse_inputs(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """What a user adds through the warehouse rather than data/: corpus measurements
    (`llmplan corpus scan`) and the latest scaling-law fit (`llmplan fit-scaling`). Their hashes
    join the run's inputs, so a scan or a fit makes the next run recompute instead of reusing."""
    def digest(sql: str) -> str:
        return hashlib.sha256(repr(con.execute(sql).fetchall()).encode()).hexdigest()
    return {
        "warehouse:raw.corpus_measurements": digest(
            """SELECT file_sha256, "language", tokenizer, sample_fraction, seed, options, docs, "bytes", tokens,
                      docs_sampled, bytes_sampled, tokens_sq, bytes_sq, bytes_tokens
               FROM raw.corpus_measurements ORDER BY ALL"""),
        "warehouse:user scaling law": digest(
            """SELECT E, A, B, alpha, beta, fit_id FROM fits.scaling_law WHERE name = 'user'
               ORDER BY fitted_at DESC LIMIT 1"""),
    }


def fingerprint(input_hashes: dict, scenario: Scenario, extra: dict | None = None) -> str:
    payload = json.dumps({"inputs": input_hashes, "code": code_version(), "scenario": scenario.model_dump(),
                          "extra": extra or {}}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def previous_result(con: duckdb.DuckDBPyConnection, fp: str) -> str | None:
    """The run whose results answer for identical inputs, code and parameters (cache hit)."""
    row = con.execute("SELECT results_run_id FROM meta.pipeline_runs WHERE fingerprint = ? "
                      "ORDER BY finished_at DESC LIMIT 1", [fp]).fetchone()
    return row[0] if row else None


def fit_models(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """The efficiency and step models and their backtests (fits.*; see FIT_TABLES): the expensive
    part of the fit stage, determined by FIT_INPUTS and the code. Returns the rows fitted."""
    runs = warehouse.query(con, "SELECT * FROM core.training_runs")
    tp = warehouse.query(con, "SELECT * FROM core.throughput")
    table = efficiency.fit_table(runs, tp)
    if table.height < 8:
        raise LlmplanError(f"only {table.height} usable training runs: the efficiency fit needs at least 8")
    model = efficiency.fit(table)
    warehouse.append(con, "fits.efficiency", model.to_frame(run_id))
    acc = warehouse.query(con, "SELECT * FROM core.accelerators")
    warehouse.append(con, "fits.efficiency_by_accelerator", efficiency.utilization_by_accelerator(model, acc, run_id))
    bt = efficiency.backtest(table, full=model)
    summary = efficiency.backtest_summary(bt)
    steps = warehouse.query(con, "SELECT * FROM core.step_benchmarks")
    from llmplan import step

    if step.step_rows(steps, acc).height >= 10:
        # the step physics, its own backtests, and the chain plans use (step × multiplier × goodput)
        from llmplan import goodput

        sm = step.fit_step(steps, acc)
        laid = step.runs_with_step(runs.filter(pl.col("fit_exclusion_reason").is_null()), sm, acc,
                                   warehouse.query(con, "SELECT * FROM core.model_shapes"))
        res = goodput.fit_residual(laid)
        warehouse.append(con, "fits.step_physics", step.physics_frame(sm, res, run_id))
        sbt = step.step_backtest(steps, acc, full=sm, units=step.PIPELINE_SPLITS)
        warehouse.append(con, "fits.step_backtests", sbt.select(STEP_BACKTEST_COLUMNS).with_columns(pl.lit(run_id).alias("pipeline_run_id")))
        chain = step.chain_backtest(laid).with_columns(pl.lit("step × goodput").alias("method"))
        warehouse.append(con, "fits.backtests", chain.with_columns(pl.lit(run_id).alias("pipeline_run_id")))
        summary = pl.concat([
            summary, efficiency.backtest_summary(chain).filter(pl.col("method") == "llmplan")
            .with_columns(pl.lit("llmplan step × goodput").alias("method")),
            step.step_backtest_summary(sbt)], how="vertical_relaxed")
    warehouse.append(con, "fits.backtests", bt.with_columns(pl.lit("whole-run model").alias("method"),
                                                            pl.lit(run_id).alias("pipeline_run_id")))
    warehouse.append(con, "fits.backtest_summary", summary.with_columns(pl.lit(run_id).alias("pipeline_run_id")))
    return table.height


FIT_TABLES = ("fits.efficiency", "fits.efficiency_by_accelerator", "fits.backtests", "fits.backtest_summary",
              "fits.step_physics", "fits.step_backtests")
STEP_BACKTEST_COLUMNS = ("split", "framework", "source_group", "model", "accelerator", "precision", "actual", "pred_p10", "pred_p50",
                         "pred_p90", "rule_bf16", "rule_precision", "abs_log10_err", "rule_bf16_abs_log10_err",
                         "rule_precision_abs_log10_err", "inside_p10_p90")
FIT_INPUTS = ("core.training_runs", "core.throughput", "core.step_benchmarks", "core.accelerators", "core.model_shapes")


def stage_hash(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> str:
    """sha256 over the code version and the rows of `tables` (sorted, as CSV): what a stage's
    result depends on."""
    h = hashlib.sha256(code_version().encode())
    for t in tables:
        df = warehouse.query(con, f"SELECT * FROM {t}")
        h.update(t.encode())
        h.update(df.sort(df.columns, nulls_last=True).write_csv().encode())
    return h.hexdigest()


def reuse_stage(con: duckdb.DuckDBPyConnection, stage: str, input_hash: str, run_id: str, tables: tuple[str, ...]) -> str | None:
    """Copy a stage's rows from the latest run that computed it from the same inputs (the run id
    it came from), or None when no run did."""
    row = con.execute("SELECT pipeline_run_id FROM meta.stage_runs WHERE stage = ? AND input_hash = ? "
                      "ORDER BY computed_at DESC LIMIT 1", [stage, input_hash]).fetchone()
    if not row or con.execute(f"SELECT count(*) FROM {tables[0]} WHERE pipeline_run_id = ?", [row[0]]).fetchone()[0] == 0:
        return None                                  # that run's rows are gone: compute again
    for t in tables:
        con.execute(f"INSERT INTO {t} SELECT * REPLACE (? AS pipeline_run_id) FROM {t} WHERE pipeline_run_id = ?", [run_id, row[0]])
    return row[0]


def fit(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    """Efficiency model + backtests + bytes/token + shipped scaling laws, under run_id. The fits
    and backtests are reused (copied) from an earlier run whose inputs — the core rows they read
    and the code — hash the same (meta.stage_runs); anything changed recomputes them."""
    key = stage_hash(con, FIT_INPUTS)
    reused = reuse_stage(con, "fit", key, run_id, FIT_TABLES)
    if reused is None:
        n_rows = fit_models(con, run_id)
        con.execute("INSERT INTO meta.stage_runs VALUES ('fit', ?, ?, ?)", [key, run_id, datetime.now(timezone.utc)])
    else:
        n_rows = con.execute("SELECT count(*) FROM fits.efficiency WHERE pipeline_run_id = ? AND kind = 'weight'",
                             [run_id]).fetchone()[0]
    fit_bytes_per_token(con, run_id)
    now = datetime.now(timezone.utc)
    laws = pl.DataFrame([{**law.as_dict(), "n_points": None, "fitted_at": now} for law in SHIPPED_LAWS.values()])
    warehouse.append(con, "fits.scaling_law", laws.with_columns(pl.lit(run_id).alias("pipeline_run_id")))
    # A user fit (llmplan fit-scaling) carries over to later runs.
    con.execute("""INSERT INTO fits.scaling_law SELECT ? AS pipeline_run_id, * EXCLUDE (pipeline_run_id)
                   FROM fits.scaling_law WHERE name = 'user' AND pipeline_run_id <> ?
                   ORDER BY fitted_at DESC LIMIT 1""", [run_id, run_id])
    summary = warehouse.query(con, "SELECT * EXCLUDE (pipeline_run_id) FROM fits.backtest_summary WHERE pipeline_run_id = ?",
                              [run_id])
    return {"n_fit_rows": n_rows, "backtest": summary.to_dicts(), "fits_reused_from": reused}


def fit_bytes_per_token(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Per (language, tokenizer): measured scans — the latest measurement of each file pooled into
    one estimate with its 95 % interval (llmplan.corpus.pooled_estimate, the scan's own rule) —
    and published corpus ratios (UTF-8 text sizes only), side by side."""
    from llmplan.corpus import FileLang, LangStats, pooled_estimate
    from llmplan.tokenizers import family

    m = con.sql("""
        SELECT * FROM raw.corpus_measurements WHERE tokens > 0 AND tokens_sq IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY file_sha256, "language", tokenizer
                                   ORDER BY sample_fraction DESC, scanned_at DESC) = 1""").pl()
    rows = []
    for (lang, tok), g in m.group_by("language", "tokenizer", maintain_order=True):   # one row per language × tokenizer
        strata = []
        for (frac,), h in g.group_by("sample_fraction"):
            st = LangStats()
            for r in h.iter_rows(named=True):
                st.add(LangStats(r["docs"], r["bytes"], r["chars"], r["docs_sampled"], r["bytes_sampled"], r["tokens"],
                                 r["tokens_sq"], r["bytes_sq"], r["bytes_tokens"],
                                 *(math.nan if r.get(k) is None else r[k] for k in FileLang.CHAR_SUMS)))
            strata.append((st, frac))
        e = pooled_estimate(strata)
        if e["bytes_per_token"] is None:
            continue
        ci = e["bytes_per_token_ci95"] or [e["bytes_per_token"]] * 2
        rows.append({"language": lang, "tokenizer": tok, "tokenizer_family": family(tok), "kind": "measured",
                     "bytes_per_token": e["bytes_per_token"], "lo": ci[0], "hi": ci[1], "log_sd": e["log_sd"],
                     "n_sources": g.height,
                     "bytes": float(g["bytes"].sum()), "tokens": e["tokens"],
                     "source": f"llmplan corpus scan ({g.height} file{'s' if g.height > 1 else ''})"})
    schema = {"language": pl.Utf8, "tokenizer": pl.Utf8, "tokenizer_family": pl.Utf8, "kind": pl.Utf8,
              "bytes_per_token": pl.Float64, "lo": pl.Float64, "hi": pl.Float64, "log_sd": pl.Float64, "n_sources": pl.Int64,
              "bytes": pl.Float64, "tokens": pl.Float64, "source": pl.Utf8}
    measured = pl.DataFrame(rows, schema=schema)
    published = con.sql("""
        SELECT "language", coalesce(tokenizer, 'unknown') AS tokenizer, any_value(tokenizer_family) AS tokenizer_family,
               'published' AS kind, median(bytes_per_token) AS bytes_per_token, min(bytes_per_token) AS lo,
               max(bytes_per_token) AS hi, count(*) AS n_sources, sum("bytes") AS "bytes", sum(tokens) AS tokens,
               string_agg(corpus, '; ' ORDER BY corpus) AS "source"
        FROM core.corpus_published
        WHERE bytes_per_token IS NOT NULL AND size_kind = 'utf8_text' AND "language" <> 'mixed'
        GROUP BY "language", coalesce(tokenizer, 'unknown')""").pl()
    published = published.with_columns(pl.lit(None, pl.Float64).alias("log_sd")).select(list(schema))
    out = pl.concat([measured, published.cast(schema)], how="vertical").with_columns(pl.lit(run_id).alias("pipeline_run_id"))
    warehouse.append(con, "fits.bytes_per_token", out)


def latest_law(con: duckdb.DuckDBPyConnection, name: str) -> Law:
    """A shipped law by name, the latest user fit ('user'), or 'auto': the user fit when present."""
    if name in SHIPPED_LAWS:
        return SHIPPED_LAWS[name]
    if name == "auto":
        row = con.sql("SELECT count(*) FROM fits.scaling_law WHERE name = 'user'").fetchall()[0]
        return latest_law(con, "user") if row[0] else SHIPPED_LAWS["besiroglu2024"]
    rows = con.execute("SELECT name, E, A, B, alpha, beta, source, fit_id FROM fits.scaling_law WHERE name = ? "
                       "ORDER BY fitted_at DESC LIMIT 1", [name]).fetchall()
    row = rows[0] if rows else None
    if not row:
        raise LlmplanError(f"no scaling law named {name!r}; shipped: {', '.join(SHIPPED_LAWS)}; "
                           "fit your own with `llmplan fit-scaling --losses FILE.csv` (name 'user')")
    draws = None
    if row[7]:
        d = con.execute("SELECT E, A, B, alpha, beta FROM fits.scaling_law_draws WHERE fit_id = ? ORDER BY draw",
                        [row[7]]).fetchall()
        draws = np.array(d, float) if d else None
    return Law(*row[:7], draws=draws)


def load_model(con: duckdb.DuckDBPyConnection, run_id: str | None = None, whole_only: bool = False):
    """(model, run id): what plans predict hours with — the step × goodput chain (llmplan.step)
    when the run fitted a step model, else the whole-run model alone (whole_only forces it)."""
    if run_id is None:
        row = con.execute("SELECT results_run_id FROM main.latest_run").fetchone()
        if not row:
            raise LlmplanError("the warehouse has no fitted efficiency model yet; create one with `llmplan run`")
        run_id = row[0]
    f = warehouse.query(con, "SELECT * FROM fits.efficiency WHERE pipeline_run_id = ?", [run_id])
    if f.height == 0:
        raise LlmplanError(f"no efficiency fit for run {run_id}; create one with `llmplan run`")
    whole = efficiency.EfficiencyModel.from_frame(f)
    if whole_only:
        return whole, run_id
    sf = warehouse.query(con, "SELECT * FROM fits.step_physics WHERE pipeline_run_id = ?", [run_id])
    if sf.height == 0:
        return whole, run_id
    from llmplan.step import Chain, physics_from_frame

    step_model, residual = physics_from_frame(sf)
    return Chain(whole, step_model, residual), run_id


def planning_inputs(con: duckdb.DuckDBPyConnection, accelerator: str, law_name: str):
    """What a one-off plan needs from the latest run: (model, run id, the accelerator's row,
    the loss law, bytes/token fits)."""
    from llmplan.accelerators import resolve

    model, run_id = load_model(con)
    name = resolve(accelerator, warehouse.query(con, "SELECT * FROM core.accelerator_aliases"))
    acc = warehouse.query(con, "SELECT * FROM core.accelerators WHERE accelerator = ?", [name])
    bpt = warehouse.query(con, "SELECT * FROM fits.bytes_per_token WHERE pipeline_run_id = ?", [run_id])
    return model, run_id, acc, latest_law(con, law_name), bpt


def plan(con: duckdb.DuckDBPyConnection, run_id: str, scenario: Scenario) -> dict:
    from llmplan.accelerators import resolve
    from llmplan.plan import build_plans

    model, _ = load_model(con, run_id)
    table = warehouse.query(con, "SELECT * FROM core.accelerator_aliases")
    names = [resolve(a, table) for a in scenario.accelerators]
    acc = warehouse.query(con, "SELECT * FROM core.accelerators").filter(pl.col("accelerator").is_in(names))
    law = latest_law(con, scenario.scaling_law)
    bpt = warehouse.query(con, "SELECT * FROM fits.bytes_per_token WHERE pipeline_run_id = ?", [run_id])
    plans, langs = build_plans(scenario, model, acc, law, bpt)
    warehouse.append(con, "plans.plans", plans.with_columns(pl.lit(run_id).alias("pipeline_run_id")))
    warehouse.append(con, "plans.plan_languages", langs.with_columns(pl.lit(run_id).alias("pipeline_run_id")))
    return {"plan_rows": plans.height}


def tracking_inputs(con: duckdb.DuckDBPyConnection, run_id: str | None = None):
    """What following a run needs from the warehouse: (model, accelerator aliases, accelerators, law)."""
    model, _ = load_model(con, run_id)
    return (model, warehouse.query(con, "SELECT * FROM core.accelerator_aliases"),
            warehouse.query(con, "SELECT * FROM core.accelerators"), latest_law(con, "auto"))


def track_one(inputs, spec, log_path: Path, data_dir: Path | None = None, now: datetime | None = None
              ) -> tuple[dict, pl.DataFrame]:
    """One run in progress at the moment `now` (default: the current time): (forecast row, its log
    with the plan's predicted loss per line). The nightly row, the report card and artifact that
    render it, the track flow and `llmplan track` all come from here (tracking.forecast_run)."""
    from llmplan import progress, tracking
    from llmplan.accelerators import resolve

    model, aliases, accs, law = inputs
    log, info = progress.read_log(log_path, spec)
    acc = accs.filter(pl.col("accelerator") == resolve(spec.accelerator, aliases))
    prior = tracking.plan_prior(spec, model, acc, law)
    obs, fc = tracking.forecast_run(spec, log, prior, now or datetime.now(timezone.utc))
    n = spec.n_params()
    lp = Path(log_path).resolve()
    root = Path(data_dir).resolve() if data_dir else None
    fc.update(run_name=spec.name, error=None, log_file=lp.relative_to(root).as_posix() if root and lp.is_relative_to(root) else str(lp),
              log_kind=info["kind"], log_lines=info["lines"], bad_lines=info["bad_lines"],
              bad_lines_named="; ".join(info["bad"]) or None, params=n, active_params=spec.n_active(),
              accelerator=acc["accelerator"][0], gpus=spec.gpus,
              loss_predicted_now=tracking.predicted_loss_at(law, n, obs.tokens_done),
              loss_predicted_end=prior.predicted_loss, loss_law=prior.loss_law)
    sha = hashlib.sha256(lp.read_bytes()).hexdigest() if lp.is_file() else None
    # the plan's loss along the log, for the loss curve (vectorised over the log's lines)
    pred = law.loss(np.full(log.height, n), np.maximum(log["tokens"].to_numpy(), 1.0)) if law is not None else np.full(log.height, np.nan)
    log = log.with_columns(pl.lit(spec.name).alias("run_name"), pl.lit(fc["log_file"]).alias("log_file"), pl.lit(sha).alias("log_sha256"),
                           pl.Series("predicted_loss", pred, dtype=pl.Float64))
    return fc, log


def track(con: duckdb.DuckDBPyConnection, run_id: str, data_dir: Path, now: datetime | None = None) -> list[dict]:
    """Every run in data/runs_in_progress/ followed against its plan (llmplan.tracking): the
    latest log of each into tracking.progress, one forecast row per run into tracking.forecasts.
    A run whose run.toml or log cannot be used gets a row with `error` (named file, line and
    column); the others are tracked regardless. Returns the forecast rows.

    Forecasts are as of `now`, the pipeline run's moment (forecast_at says so; a log whose last
    line is older than a few logging intervals is flagged stale). A reused run keeps the forecasts
    of the run it reuses, with that run's moment."""
    from llmplan import progress

    dirs = progress.runs_in_progress(Path(data_dir))
    if not dirs:
        return []
    inputs = tracking_inputs(con, run_id)
    rows, logs = [], []
    for d in dirs:                                   # runs in progress: a handful, each vectorised inside
        try:
            spec = progress.load_spec(d / progress.RUN_FILE, d.name)
            fc, log = track_one(inputs, spec, progress.find_log(d, spec), data_dir, now)
        except LlmplanError as e:
            rows.append({"run_name": d.name, "error": str(e), "summary": f"{d.name}: cannot be tracked — {str(e).splitlines()[0]}"})
            continue
        rows.append(fc)
        logs.append(log.with_columns(pl.lit(run_id).alias("pipeline_run_id")))
    con.execute("DELETE FROM tracking.progress WHERE run_name NOT IN (SELECT unnest(?::VARCHAR[]))", [[r["run_name"] for r in rows]])
    for lg in logs:
        con.execute("DELETE FROM tracking.progress WHERE run_name = ?", [lg["run_name"][0]])
        warehouse.append(con, "tracking.progress", lg)
    warehouse.append(con, "tracking.forecasts", pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.lit(run_id).alias("pipeline_run_id")))
    return rows


def record_run(con: duckdb.DuckDBPyConnection, run_id: str, started: datetime, status: str, input_hashes: dict,
               scenario: Scenario, fp: str, results_run_id: str, report_path: str | None,
               flow_run_id: str | None, summary: dict) -> None:
    con.execute(
        "INSERT INTO meta.pipeline_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, started, datetime.now(timezone.utc), status, json.dumps(input_hashes, sort_keys=True), code_version(),
         scenario.model_dump_json(), fp, results_run_id, report_path, flow_run_id, json.dumps(summary, default=str)])


def log_failure(path: Path, run_id: str, started: datetime, error: BaseException, parameters: dict) -> None:
    """Failed runs never touch the warehouse; they are appended to <warehouse>.failed-runs.jsonl."""
    log = Path(path).with_name(Path(path).name + ".failed-runs.jsonl")
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"pipeline_run_id": run_id, "started_at": started.isoformat(),
                             "failed_at": datetime.now(timezone.utc).isoformat(), "error": str(error),
                             "parameters": parameters}, default=str) + "\n")


def headline_row(con: duckdb.DuckDBPyConnection, run_id: str, policy: str) -> dict | None:
    """The plan people look at first (llmplan.headline.pick: the target nearest 10B, memory
    fitting, cheapest p50 cost on an accelerator the efficiency fit has seen)."""
    from llmplan import headline as hl

    plans = warehouse.query(con, "SELECT * FROM plans.plans WHERE pipeline_run_id = ? AND policy = ?", [run_id, policy])
    seen = warehouse.query(con, "SELECT name FROM fits.efficiency WHERE pipeline_run_id = ? AND kind = 'group'", [run_id])
    return hl.pick(plans, policy, seen["name"].to_list())


def headline_plans(con: duckdb.DuckDBPyConnection, run_id: str, scenario: Scenario) -> pl.DataFrame:
    """The report's answer cards as rows (llmplan.headline.card_rows: per headline target ×
    accelerator, the cluster the card shows), with each target's tokens and text per language,
    the evidence caveats, and `headline` true on the one plan the report puts first. The Prefect
    headline artifact, the report and the run summary all read these rows."""
    from llmplan import evidence
    from llmplan import headline as hl

    policy = scenario.policies[0]
    plans = warehouse.query(con, "SELECT * FROM plans.plans WHERE pipeline_run_id = ? AND policy = ?", [run_id, policy])
    langs = warehouse.query(con, "SELECT * FROM plans.plan_languages WHERE pipeline_run_id = ? AND policy = ?", [run_id, policy])
    rows = hl.card_rows(plans, scenario.headline_params(), policy).join(
        hl.text_per_language(langs), on=["target_params", "policy"], how="left")
    top = headline_row(con, run_id, policy) or {}
    rows = rows.with_columns(((pl.col("target_params") == top.get("target_params")) & (pl.col("accelerator") == top.get("accelerator"))
                              & (pl.col("cluster_gpus") == top.get("cluster_gpus"))).fill_null(False).alias("headline"))
    return evidence.with_caveats(rows, evidence_of(con, run_id))


def evidence_of(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> dict:
    """What the warehouse has seen (llmplan.evidence.Evidence): the largest public dense and MoE
    runs, and the accelerators with training data."""
    from llmplan import evidence

    return evidence.from_warehouse(
        warehouse.query(con, "SELECT * FROM core.training_runs"),
        warehouse.query(con, "SELECT * FROM core.throughput"),
        warehouse.query(con, "SELECT * FROM core.step_benchmarks"))


def headline(con: duckdb.DuckDBPyConnection, run_id: str, policy: str) -> str:
    from llmplan.units import fmt_count, fmt_usd

    r = headline_row(con, run_id, policy)
    if not r:
        return ""
    return (f"{r['target_params'] / 1e9:g}B {r['policy']} on {r['accelerator']}: "
            f"{fmt_count(r['gpu_days_p50'])} GPU-days p50, {fmt_usd(r['cost_usd_p50'])}")


def history_reasons(con: duckdb.DuckDBPyConnection, history: pl.DataFrame, run_id: str, scenario: Scenario,
                    input_hashes: dict | None) -> pl.DataFrame:
    """Per run in `history`: why its results may differ from the run before it (data files, code,
    parameters — llmplan.artifacts.changed_inputs); the run being reported is described by the
    inputs it was given."""
    from llmplan.artifacts import changed_inputs

    ids = history.sort("finished_at")["pipeline_run_id"].unique(maintain_order=True).to_list()
    meta = {r["pipeline_run_id"]: r for r in warehouse.query(
        con, "SELECT pipeline_run_id, input_hashes, code_version, parameters FROM meta.pipeline_runs").iter_rows(named=True)}
    meta.setdefault(run_id, {"pipeline_run_id": run_id, "input_hashes": json.dumps(input_hashes) if input_hashes is not None else None,
                             "code_version": code_version(), "parameters": scenario.model_dump_json()})
    why = ["first run shown"]
    for a, b in zip(ids, ids[1:]):            # one comparison per pipeline run, not per plan row
        if a not in meta or b not in meta or meta[b]["input_hashes"] is None:
            why.append("unknown")
        else:
            why.append("; ".join(changed_inputs(meta[a], meta[b])) or "nothing changed")
    return pl.DataFrame({"pipeline_run_id": ids, "why": why[: len(ids)]}, schema={"pipeline_run_id": pl.Utf8, "why": pl.Utf8})


def report_data(con: duckdb.DuckDBPyConnection, run_id: str, scenario: Scenario, input_hashes: dict | None = None) -> dict:
    """Frames the report draws, all from the warehouse (as of the staging copy)."""
    q = lambda sql, params=None: warehouse.query(con, sql, params)  # noqa: E731
    runs = q("SELECT * FROM core.training_runs WHERE utilization IS NOT NULL AND fit_exclusion_reason IS NULL")
    model, _ = load_model(con, run_id, whole_only=True)
    weights = pl.DataFrame({"run_key": list(model.weights), "fit_weight": list(model.weights.values())},
                           schema={"run_key": pl.Utf8, "fit_weight": pl.Float64})
    runs = runs.join(weights, on="run_key", how="left")
    acc = q("SELECT * FROM core.accelerators WHERE accelerator = 'A100-80GB'")
    c = np.geomspace(max(runs["training_flop"].min() / 3, 1e17), runs["training_flop"].max() * 3, 50)
    band = pl.DataFrame({"training_flop": c, "params": np.sqrt(c / 120.0)}).with_columns(
        pl.lit(256.0).alias("gpu_count"), pl.lit(None, pl.Int32).alias("year"),
        pl.lit("A100-80GB").alias("accelerator"), pl.lit(float(acc["peak_flops"][0]) if acc.height else 312e12).alias("peak_flops"))
    band = model.predict(band)
    plans = q("SELECT * FROM plans.plans WHERE pipeline_run_id = ?", [run_id])
    langs = q("SELECT * FROM plans.plan_languages WHERE pipeline_run_id = ?", [run_id])
    prev = con.execute("SELECT results_run_id FROM meta.pipeline_runs WHERE results_run_id <> ? "
                       "ORDER BY finished_at DESC LIMIT 1", [run_id]).fetchone()
    changes = pl.DataFrame(schema={"target_params": pl.Float64, "accelerator": pl.Utf8, "old": pl.Float64, "new": pl.Float64})
    bpt_changes, lang_only = None, None
    if prev:
        # only what moved (llmplan.headline): GPU-days of this policy's plans, and bytes/token per language
        from llmplan import headline as hl

        old_plans = q("SELECT * FROM plans.plans WHERE pipeline_run_id = ?", [prev[0]])
        changes = hl.gpu_day_changes(old_plans, plans, scenario.policies[0]).sort("target_params", "accelerator").select(
            "target_params", "accelerator", "old", "new")
        bpt_changes = hl.bytes_per_token_changes(q("SELECT * FROM plans.plan_languages WHERE pipeline_run_id = ?", [prev[0]]), langs)
        from llmplan.artifacts import only_report_language

        old_meta = warehouse.query(con, "SELECT input_hashes, code_version, parameters FROM meta.pipeline_runs "
                                        "WHERE pipeline_run_id = ?", [prev[0]])
        if old_meta.height and input_hashes is not None:
            lang_only = only_report_language(old_meta.row(0, named=True), {
                "input_hashes": json.dumps(input_hashes), "code_version": code_version(), "parameters": scenario.model_dump_json()})
    law = latest_law(con, scenario.scaling_law)
    targets = plans.group_by("target_params", "policy").agg(pl.col("params").first(), pl.col("tokens").first(),
                                                            pl.col("predicted_loss").first())
    summary = q("SELECT * FROM fits.backtest_summary WHERE pipeline_run_id = ? ORDER BY split, method DESC", [run_id])
    first = headline_row(con, run_id, scenario.policies[0])
    ev = evidence_of(con, run_id)
    if first:
        from llmplan.evidence import with_caveats

        first["caveats"] = with_caveats(pl.DataFrame([first]), ev, scenario.report_lang)["caveats"][0].to_list()
    head_langs = langs.filter((pl.col("target_params") == (first or {}).get("target_params")) & (pl.col("policy") == scenario.policies[0]))
    kpis = {"runs_in_fit": runs.height, "headline": first, "headline_bytes": float(head_langs["bytes_p50"].sum()) if head_langs.height else None,
            "backtest": summary.filter(~pl.col("split").str.starts_with("per step")
                                       & pl.col("method").is_in(["llmplan", "llmplan step × goodput"]))}
    # The headline target's p50 across runs (committed runs in main.plan_history, then this one),
    # each run with why it differs from the one before: data, code or parameters.
    heads = scenario.headline_params()
    nearest = min(heads, key=lambda t: abs(math.log(t / 1e10)))
    past = q("SELECT pipeline_run_id, finished_at, target_params, policy, accelerator, gpu_days_p50 FROM main.plan_history "
             "WHERE target_params = ? AND policy = ?", [nearest, scenario.policies[0]])
    now = datetime.now(timezone.utc)
    now_rows = plans.filter((pl.col("target_params") == nearest) & (pl.col("policy") == scenario.policies[0])).group_by(
        "target_params", "policy", "accelerator").agg(pl.col("gpu_days_p50").min()).with_columns(
        pl.lit(run_id).alias("pipeline_run_id"), pl.lit(now).alias("finished_at"))
    history = pl.concat([past.with_columns(pl.col("finished_at").cast(pl.Datetime("us", "UTC"))),
                         now_rows.select(past.columns).with_columns(pl.col("finished_at").cast(pl.Datetime("us", "UTC")))],
                        how="vertical_relaxed")
    history = history.join(history_reasons(con, history, run_id, scenario, input_hashes), on="pipeline_run_id", how="left")
    # Runs in progress: this run's forecasts, their logs (thinned to ≤ 400 points a run for the
    # charts) and every earlier forecast of the same runs (how the ETA moved night by night).
    tracked = q("""SELECT * FROM tracking.forecasts WHERE pipeline_run_id = ?
                   QUALIFY row_number() OVER (PARTITION BY run_name) = 1 ORDER BY run_name""", [run_id])
    progress_rows = q("""SELECT run_name, "time", tokens, loss, predicted_loss FROM (
                           SELECT *, row_number() OVER (PARTITION BY run_name ORDER BY "time") AS i,
                                  count(*) OVER (PARTITION BY run_name) AS n FROM tracking.progress)
                         WHERE (i - 1) % greatest(1, n // 400) = 0 OR i = n ORDER BY run_name, "time" """)
    eta_history = q("""SELECT f.pipeline_run_id, f.run_name, f.as_of, f.eta_p10, f.eta_p50, f.eta_p90, f.deadline
                       FROM tracking.forecasts f WHERE f.error IS NULL AND f.run_name IN (SELECT run_name FROM tracking.forecasts
                                                                                       WHERE pipeline_run_id = ?)
                       ORDER BY f.run_name, f.as_of""", [run_id])
    return {
        "tracked": tracked, "progress": progress_rows, "eta_history": eta_history,
        "headline_targets": heads, "policy": scenario.policies[0], "history": history,
        "runs": runs, "band": band, "throughput": q("SELECT * FROM core.throughput"),
        "backtests": q("SELECT * FROM fits.backtests WHERE pipeline_run_id = ?", [run_id]),
        "backtest_summary": summary,
        "bytes_per_token": q("SELECT * FROM fits.bytes_per_token WHERE pipeline_run_id = ?", [run_id]),
        "plans": plans, "languages": langs, "law": law, "targets": targets, "changes": changes, "kpis": kpis,
        "evidence": ev, "bpt_changes": bpt_changes, "lang_only": lang_only, "previous_run": prev[0] if prev else None,
    }


def write_report(con: duckdb.DuckDBPyConnection, run_id: str, scenario: Scenario, reports_dir: Path,
                 input_hashes: dict | None = None) -> Path:
    from llmplan import report

    data = report_data(con, run_id, scenario, input_hashes)
    page, headline = report.render(run_id, data, lang=scenario.report_lang)
    out = Path(reports_dir) / run_id / "index.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    report.headline_png(headline, out.with_name("headline.png"))
    return out


def write_index(con: duckdb.DuckDBPyConnection, reports_dir: Path) -> Path:
    from llmplan import report

    runs = warehouse.query(con, "SELECT pipeline_run_id, results_run_id, finished_at, summary FROM meta.pipeline_runs ORDER BY finished_at DESC")
    rows = []
    for r in runs.iter_rows(named=True):
        s = json.loads(r["summary"] or "{}")
        if (Path(reports_dir) / r["pipeline_run_id"] / "index.html").exists():
            rows.append({"pipeline_run_id": r["pipeline_run_id"], "finished_at": r["finished_at"], "headline": s.get("headline", "")})
    return report.write_index(reports_dir, rows)
