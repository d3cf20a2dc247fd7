"""corpus_stats: measure corpus files with one Prefect task per file/shard.

Local runs use Prefect's default task runner; with `dask_address` the shard tasks run on that
Dask cluster through prefect-dask. The counting itself is llmplan.corpus.scan_shard.
"""
# No `from __future__ import annotations` here: Prefect resolves pydantic parameters at deploy time.

from typing import Literal

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field

from llmplan import config, corpus
from llmplan.corpus import Options, Shard, ShardResult
from llmplan.corpus_scan import scan


class CorpusScan(BaseModel):
    """What to measure and how."""

    tokenizer: str = Field(default="mistral-sp-v1", description="mistral-sp-v1 | tekken | bytes | sp:PATH | hf:PATH | bpe-train:VOCAB")
    lang: str | None = Field(default=None, description="Language of every document (else lang_field or the script detector)")
    lang_field: str | None = Field(default=None, description="JSONL/Parquet field holding the language")
    text_field: str = Field(default="text", description="JSONL/Parquet field holding the text")
    split: Literal["document", "paragraphs"] = Field(default="document", description="For .txt files")
    sample: float | None = Field(default=None, gt=0, le=1, description="Fraction of documents to tokenize")
    seed: int = Field(default=0, ge=0, description="Sampling seed")
    latin_as: str = Field(default="en", description="Language code the script detector gives Latin-script text")


@task(name="scan-shard", task_run_name="scan {shard.path}#{shard.index}")
def scan_shard_task(shard: Shard, opts: Options, spec: str) -> ShardResult:
    return corpus.scan_shard(shard, opts, spec, 1)


def _task_runner(shards, opts, spec):
    futures = [scan_shard_task.submit(s, opts, spec) for s in shards]
    return [f.result() for f in futures]


@flow(name="corpus_stats", log_prints=True)
def corpus_stats(paths: list[str], options: CorpusScan | dict | None = None, warehouse: str | None = None,
                 dask_address: str | None = None) -> dict:
    """Measure bytes, characters and tokens per (file, language) and store them in the warehouse."""
    if dask_address:
        from prefect_dask import DaskTaskRunner

        return corpus_stats.with_options(task_runner=DaskTaskRunner(address=dask_address))(
            paths=paths, options=options, warehouse=warehouse, dask_address=None)
    o = options if isinstance(options, CorpusScan) else CorpusScan(**(options or {}))
    opts = Options(**o.model_dump())
    summary = scan(paths, opts, config.warehouse_path(warehouse), runner=_task_runner)
    create_table_artifact(key="llmplan-corpus-stats", table=[
        {k: v for k, v in r.items() if k != "tokens_ci95"} for r in summary["languages"]],
        description=f"corpus scan, tokenizer {opts.tokenizer}, {summary['files']} file(s)")
    for e in summary["errors"]:
        print(f"{e['file']}: {e['count']} × {e['kind']} (first lines {e['first_lines']})")
    return summary
