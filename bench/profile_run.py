"""Where a full `llmplan run` spends its time: cProfile over the whole command (temporary
Prefect server included) into a new warehouse, then the top functions by cumulative time and
the pipeline's stages.

    .venv/bin/python bench/profile_run.py [--top 30]

(Under the profiler everything is ~20 % slower; compare stages with each other, and use
bench/run_timing.py for wall times.)
"""

import argparse
import cProfile
import io
import os
import pstats
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("PREFECT_HOME", str(Path(tmp) / "home"))
        os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        os.environ.pop("PREFECT_API_URL", None)
        from llmplan.cli import app

        prof = cProfile.Profile()
        prof.enable()
        try:
            app(["run", "--warehouse", str(Path(tmp) / "w.duckdb"), "--reports", str(Path(tmp) / "reports")])
        except SystemExit:
            pass
        prof.disable()
    out = io.StringIO()
    st = pstats.Stats(prof, stream=out).sort_stats("cumulative")
    st.print_stats(r"flows/nightly.py|llmplan/pipeline.py:\d+\((ingest|fit|fit_models|plan|track|write_report|report_data)\)")
    st.print_stats(a.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
