"""The `llmplan` command line (typer + rich). Commands that only read the warehouse never
import Prefect: a what-if answers in well under a second."""

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from llmplan.errors import LlmplanError

app = typer.Typer(help="Plan LLM pretraining from data: tokens, bytes per language, GPU-hours, days, cost, memory, loss.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
console = Console()
err = Console(stderr=True)

WAREHOUSE_HELP = "DuckDB warehouse file (default $LLMPLAN_WAREHOUSE or data/warehouse.duckdb)"


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _print_frame(df, fmt: str = "table", title: str | None = None) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(df.to_dicts(), default=str, indent=1) + "\n")
    elif fmt == "csv":
        sys.stdout.write(df.write_csv())
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


@app.command()
def run(
    warehouse: Optional[Path] = typer.Option(None, help=WAREHOUSE_HELP),
    data_dir: Optional[Path] = typer.Option(None, "--data", help="Input folder (default data/)"),
    reports_dir: Optional[Path] = typer.Option(None, "--reports", help="Report folder (default reports/)"),
    targets: Optional[Path] = typer.Option(None, help="Scenario TOML (default data/targets.toml)"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON"),
):
    """Run the whole nightly pipeline once (ingest → fit → plan → report) and print the report's path.

    Examples:\n
      llmplan run\n
      llmplan run --warehouse /tmp/w.duckdb --reports /tmp/reports --json
    """
    _prefect_env()
    try:
        from flows.nightly import nightly_refresh
        from llmplan import config
        from llmplan.scenario import load_scenario

        sc = load_scenario(targets) if targets else None
        if sc is None and data_dir:
            sc = load_scenario(config.data_dir(data_dir) / "targets.toml")
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
    from llmplan import config, warehouse as wh

    if fmt not in ("table", "csv", "json"):
        _fail(LlmplanError(f"--format must be table, csv or json, got {fmt!r}"))
    try:
        with wh.connect_readonly(config.warehouse_path(warehouse)) as con:
            df = con.sql(query).pl()
    except LlmplanError as e:
        _fail(e)
    except Exception as e:  # duckdb errors: syntax, missing table, write attempt on a read-only file
        _fail(LlmplanError(str(e)))
    _print_frame(df, fmt)


def main() -> None:  # pragma: no cover
    app()
