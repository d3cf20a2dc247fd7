"""corpus_stats as a Prefect flow: one task per shard, locally and on a real local Dask cluster."""

import json

import duckdb
import pytest

from flows.corpus import corpus_stats
from llmplan import corpus


@pytest.fixture
def files(tmp_path, monkeypatch):
    d = tmp_path / "c"
    d.mkdir()
    for lang, text in (("en", "Planning a pretraining run needs data and accelerators. "), ("ja", "日本語の学習データを計画します。")):
        (d / f"{lang}.jsonl").write_text("".join(json.dumps({"text": f"{text} {i}", "lang": lang}, ensure_ascii=False) + "\n"
                                                 for i in range(400)), encoding="utf-8")
    return d


def test_flow_runs_one_task_per_shard_and_stores(files, tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "SHARD_BYTES", 4096)
    monkeypatch.setattr(corpus, "MIN_SHARD_BYTES", 4096)
    wh = tmp_path / "w.duckdb"
    s = corpus_stats(paths=[str(files)], options={"tokenizer": "mistral-sp-v1", "lang_field": "lang"}, warehouse=str(wh))
    assert {r["language"]: r["docs"] for r in s["languages"]} == {"en": 400, "ja": 400}
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM raw.corpus_measurements").fetchall()[0][0] == 2


def test_flow_on_a_local_dask_cluster(files, tmp_path):
    from distributed import LocalCluster

    wh = tmp_path / "w.duckdb"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        s = corpus_stats(paths=[str(files / "en.jsonl"), str(files / "ja.jsonl")],
                         options={"tokenizer": "bytes", "lang_field": "lang"}, warehouse=str(wh),
                         dask_address=cluster.scheduler_address)
        with cluster.get_client() as client:
            prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert {r["language"]: r["docs"] for r in s["languages"]} == {"en": 400, "ja": 400}
    assert s["languages"][0]["bytes_per_token"] == 1.0
    assert "scan_shard_task" in prefixes, prefixes      # the shard tasks ran on this Dask cluster
