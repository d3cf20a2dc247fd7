"""The pipeline's stages on a real DuckDB file, without Prefect: the fit stage is reused by
hash when its inputs are unchanged and recomputed when any of them changes."""

from llmplan import pipeline
from llmplan.warehouse import transaction_file
from tests.helpers import table_contents

OURS = ("model,org,year,params_b,active_params_b,tokens_b,gpu_type,gpu_count,gpu_hours,wall_days,source,notes\n"
        "Ours-3B,Acme,2025,3,,300,H100-80GB,64,20000,,our logs,[primary] our run\n")


def _fits(path, run_id):
    """Every fits.* row of a run, with the run id taken out (to compare two runs' results)."""
    return {t: sorted((tuple("RUN" if v == run_id else v for v in r) for r in rows if run_id in r), key=repr)
            for t, rows in table_contents(path).items() if t in pipeline.FIT_TABLES}


def test_fit_stage_is_reused_by_hash_and_recomputed_when_an_input_changes(tmp_path, data_copy, monkeypatch):
    wh = tmp_path / "w.duckdb"
    with transaction_file(wh) as con:
        pipeline.ingest(con, data_copy)
        first = pipeline.fit(con, "a")
        second = pipeline.fit(con, "b")                         # same rows, same code
    assert first["fits_reused_from"] is None and second["fits_reused_from"] == "a"
    assert _fits(wh, "a") == _fits(wh, "b") and all(_fits(wh, "b")[t] for t in ("fits.efficiency", "fits.backtests"))
    assert second["backtest"] == first["backtest"] and second["n_fit_rows"] == first["n_fit_rows"]

    # a new training-run row changes core.training_runs: the fits are computed again, and differ
    (data_copy / "training_runs" / "ours.csv").write_text(OURS, encoding="utf-8")
    with transaction_file(wh) as con:
        pipeline.ingest(con, data_copy)
        third = pipeline.fit(con, "c")
    assert third["fits_reused_from"] is None and third["n_fit_rows"] == first["n_fit_rows"] + 1
    assert _fits(wh, "c")["fits.efficiency"] != _fits(wh, "a")["fits.efficiency"]

    # other code: computed again even from the same rows
    monkeypatch.setattr(pipeline, "code_version", lambda: "other-code")
    with transaction_file(wh) as con:
        fourth = pipeline.fit(con, "d")
    assert fourth["fits_reused_from"] is None


def test_fit_inputs_name_every_core_table_the_fit_reads():
    """The fit stage is reused when FIT_INPUTS hash the same, so every core table fit_models reads
    must be among them (core.model_shapes once was not: a corrected published shape would have
    left last night's whole-run multiplier in place)."""
    import inspect
    import re

    read = set(re.findall(r"FROM (core\.\w+)", inspect.getsource(pipeline.fit_models)))
    assert read and read <= set(pipeline.FIT_INPUTS), read - set(pipeline.FIT_INPUTS)
