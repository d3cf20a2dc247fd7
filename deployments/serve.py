"""Serve the llmplan deployments from this process: nightly_refresh on a cron schedule;
corpus_stats, what_to_train and track_run on demand. Used by `llmplan serve`; runnable on its own against any Prefect API:

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.serve --cron "0 3 * * *" --timezone UTC

Stopping this process leaves the schedule *active* (pause_on_shutdown=False): scheduled runs
wait as Late until a server process serves them again, rather than silently stopping.
"""
# No `from __future__ import annotations`: Prefect reads the flows' pydantic parameters.

import argparse

from prefect import serve
from prefect.schedules import Cron

from flows.corpus import corpus_stats
from flows.nightly import nightly_refresh
from flows.track import track_run
from flows.what_to_train import what_to_train
from llmplan import config
from llmplan.scenario import load_scenario

NIGHTLY = "nightly"
CORPUS = "corpus-stats"
INVERSE = "what-to-train"
TRACK = "track-run"


def deployments(cron: str = "0 3 * * *", timezone: str = "UTC", parameters: dict | None = None,
                inverse_parameters: dict | None = None, track_parameters: dict | None = None):
    return [
        nightly_refresh.to_deployment(
            name=NIGHTLY, schedules=[Cron(cron, timezone=timezone)], parameters=parameters or {},
            description="Nightly refresh: ingest data/ → fit → plan the targets → publish the report.",
            tags=["llmplan"]),
        corpus_stats.to_deployment(
            name=CORPUS, description="Measure corpus files (bytes, characters, tokens per language).", tags=["llmplan"]),
        what_to_train.to_deployment(
            name=INVERSE, parameters=inverse_parameters or {},
            description="We have G accelerators for D days (or $X): what should we train?", tags=["llmplan"]),
        track_run.to_deployment(
            name=TRACK, parameters=track_parameters or {},
            description="Will the run we started finish on time? A run in progress (name or log path) against its plan.",
            tags=["llmplan"]),
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cron", default="0 3 * * *", help="nightly schedule (default 03:00)")
    ap.add_argument("--timezone", default="UTC", help="IANA time zone of the schedule")
    ap.add_argument("--warehouse", default=None, help="default warehouse parameter for the nightly run")
    ap.add_argument("--data", default=None, help="default data folder parameter")
    ap.add_argument("--reports", default=None, help="default reports folder parameter")
    a = ap.parse_args(argv)
    params = {k: v for k, v in (("warehouse", a.warehouse), ("data_dir", a.data), ("reports_dir", a.reports)) if v}
    # The run form opens filled with the scenario of targets.toml (as read now: restart serving after
    # editing it, or edit the deployment's parameters in the UI).
    params["scenario"] = load_scenario(config.data_dir(a.data) / "targets.toml").model_dump(mode="json")
    inverse = {"warehouse_path": a.warehouse} if a.warehouse else {}
    track = {**inverse, **({"data_dir": a.data} if a.data else {})}
    print(f"serving nightly_refresh/{NIGHTLY} (cron {a.cron!r}, {a.timezone}), corpus_stats/{CORPUS} and "
          f"what_to_train/{INVERSE} and track_run/{TRACK}; "
          "Ctrl-C stops serving — the schedule stays active and runs wait as Late until served again", flush=True)
    serve(*deployments(a.cron, a.timezone, params, inverse, track), pause_on_shutdown=False)


if __name__ == "__main__":
    main()
