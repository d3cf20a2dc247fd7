"""What a user adds is never silently ignored: each kind of input makes the next run recompute
and use it; an unchanged warehouse is still reused, wherever the data folder lives."""

import shutil
from pathlib import Path

import duckdb
import numpy as np
from typer.testing import CliRunner

from flows.nightly import nightly_refresh
from llmplan.artifacts import changed_inputs
from llmplan.cli import app
from llmplan.scenario import Scenario
from llmplan.scaling import BESIROGLU_2024
from tests.helpers import chart_rows, chart_specs

SC = Scenario(targets=["1B"], accelerators=["H100-80GB"], cluster_sizes=[64], policies=["chinchilla", "compute-optimal"],
              mixture={"ja": 0.5, "en": 0.5})


def _latest(wh, sql):
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_each_user_input_makes_the_next_run_recompute_and_use_it(tmp_path, data_copy):
    wh, reports = tmp_path / "w.duckdb", tmp_path / "reports"
    run = lambda data=data_copy: nightly_refresh(scenario=SC, warehouse=str(wh), data_dir=str(data),  # noqa: E731
                                                 reports_dir=str(reports))
    assert run()["status"] == "succeeded"
    assert run()["status"] == "reused"                                   # nothing changed

    # 1. a corpus scan (Japanese text) → recomputed, and ja plans use the measured ratio
    ja = tmp_path / "ja.txt"
    ja.write_text("日本語の文章を数えます。大規模言語モデルの学習計画です。\n" * 300, encoding="utf-8")
    r = CliRunner().invoke(app, ["corpus", "scan", str(ja), "--tokenizer", "mistral-sp-v1", "--lang", "ja", "--json",
                                 "--warehouse", str(wh)])
    assert r.exit_code == 0, r.output
    assert run()["status"] == "succeeded"
    kinds = dict(_latest(wh, """SELECT DISTINCT l."language", l.bytes_per_token_kind FROM plans.plan_languages l
                                JOIN latest_run r ON l.pipeline_run_id = r.results_run_id"""))
    assert kinds["ja"] == "measured"

    # 2. a scaling-law fit → recomputed, and plans use the user's law
    rng = np.random.default_rng(3)
    n, d = np.exp(rng.uniform(np.log(3e7), np.log(3e9), 30)), np.exp(rng.uniform(np.log(1e9), np.log(3e11), 30))
    f = tmp_path / "losses.csv"
    f.write_text("params,tokens,loss\n" + "".join(f"{a},{b},{BESIROGLU_2024.loss(a, b) * 1.01}\n" for a, b in zip(n, d)))
    r = CliRunner().invoke(app, ["fit-scaling", "--losses", str(f), "--bootstrap", "20", "--warehouse", str(wh)])
    assert r.exit_code == 0, r.output
    assert run()["status"] == "succeeded"
    assert _latest(wh, "SELECT DISTINCT loss_law FROM latest_plans") == [("user",)]

    # 3. a CSV of the team's own runs → recomputed
    own = data_copy / "training_runs" / "ours.csv"
    own.write_text("model,org,year,params_b,active_params_b,tokens_b,gpu_type,gpu_count,gpu_hours,wall_days,source,notes\n"
                   "Ours-3B,Acme,2025,3,,300,H100-80GB,64,20000,,our logs,[primary] our run\n", encoding="utf-8")
    assert run()["status"] == "succeeded"
    with duckdb.connect(str(wh), read_only=True) as con:
        last2 = con.sql("SELECT * FROM meta.pipeline_runs WHERE status = 'succeeded' ORDER BY finished_at DESC LIMIT 2").pl()
    new, old = last2.to_dicts()
    assert changed_inputs(old, new) == ["data: ours.csv (new)"]          # what the "what changed" artifact says
    # the report's history chart: one point per run that computed plans, each saying why it moved
    page = Path(new["report_path"]).read_text(encoding="utf-8")
    hist = chart_rows(chart_specs(page)["history"])
    why = {r["pipeline_run_id"]: r["why"] for r in hist}
    assert len(why) == 4                                                  # runs 1, 3, 4, 5 (run 2 reused run 1)
    ordered = [why[k] for k in sorted(why)]
    assert ordered[0] == "first run shown" and "corpus_measurements" in ordered[1]
    assert "user scaling law" in ordered[2] and ordered[3] == "data: ours.csv (new)"
    assert run()["status"] == "reused"

    # 4. the same inputs in another folder hash the same: still reused
    moved = tmp_path / "elsewhere" / "data"
    shutil.copytree(data_copy, moved)
    assert run(moved)["status"] == "reused"
