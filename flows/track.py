"""track_run: one run in progress from the UI — "will the run we started finish on time?" —
forecast from its progress log (llmplan.tracking) with its plan as the prior, published as the
run's markdown artifact (`llmplan-track-<run>`, the verdict in its first line). Reads the
warehouse only: the nightly refresh is what stores forecasts in tracking.*."""
# No `from __future__ import annotations` here: Prefect resolves the parameters at deploy time.

from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from llmplan import config, pipeline, progress, tracking, warehouse
from llmplan.artifacts import track_key, track_markdown
from llmplan.errors import LlmplanError


def resolve_run(run: str, data_dir: str | None = None) -> tuple[progress.RunSpec, Path]:
    """A run folder's name under data/runs_in_progress/, or a path to a log (file or TensorBoard
    folder) with its run.toml beside it, or a run folder."""
    folder = config.data_dir(data_dir) / "runs_in_progress" / run
    p = folder if (folder / progress.RUN_FILE).exists() else Path(run).expanduser()
    if p.is_dir() and (p / progress.RUN_FILE).exists():
        spec = progress.load_spec(p / progress.RUN_FILE, p.name)
        return spec, progress.find_log(p, spec)
    if p.exists():
        toml = (p if p.is_dir() else p.parent) / progress.RUN_FILE
        if not toml.exists():
            raise LlmplanError(f"{run!r}: no {progress.RUN_FILE} beside the log ({toml}); write one (params, tokens, "
                               "accelerator, gpus, start, deadline)")
        return progress.load_spec(toml, toml.parent.name), p
    names = [d.name for d in progress.runs_in_progress(config.data_dir(data_dir))]
    raise LlmplanError(f"{run!r} is neither a run in {folder.parent} ({', '.join(names) or 'none there'}) nor an existing path")


@flow(name="track_run", log_prints=True)
def track_run(run: str = "simulated-example-7b", warehouse_path: str | None = None, data_dir: str | None = None) -> dict:
    """run: a run folder's name under data/runs_in_progress/, or the path of a progress log
    (JSON Lines, CSV or TensorBoard) with its run.toml beside it."""
    log = get_run_logger()
    spec, log_path = resolve_run(run, data_dir)
    with warehouse.connect_readonly(config.warehouse_path(warehouse_path)) as con:
        inputs = pipeline.tracking_inputs(con)
    fc, _ = pipeline.track_one(inputs, spec, log_path, config.data_dir(data_dir), datetime.now(timezone.utc))
    md = track_markdown(fc)
    create_markdown_artifact(key=track_key(spec.name), markdown=md, description=f"Run in progress {spec.name}")
    (log.warning if fc.get("on_track") is False else log.info)(fc["summary"])
    return tracking.as_record(fc)
