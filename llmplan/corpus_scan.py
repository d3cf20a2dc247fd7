"""Running a corpus scan end to end (without Prefect): find files, skip unchanged ones, train a
BPE if asked, shard, count in worker processes, store per (file, language) rows all at once.
The corpus_stats flow (flows/corpus.py) runs the same steps with one Prefect task per shard."""

import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from llmplan import corpus, warehouse
from llmplan.corpus import FileLang, Options, Shard
from llmplan.errors import LlmplanError
from llmplan.tokenizers import check_name

BPE_SAMPLE_BYTES = 32 << 20     # train bpe-train:VOCAB on at most this much text


def stored_rows(wh_path: Path, shas: dict[str, str], opts: Options) -> dict[str, list[FileLang]]:
    """Rows already measured for files with the same content, tokenizer, sample, seed and options
    (language, text field, split: Options.key()) → {path: rows}. Rows stored before the options
    and the sums (of tokens, bytes and characters) were recorded (NULL) never match: they are
    measured again."""
    if not Path(wh_path).exists() or not shas:
        return {}
    con = warehouse.connect_readonly(wh_path)
    try:
        frame = con.sql("SELECT * FROM raw.corpus_measurements").pl()
    except Exception:
        return {}
    finally:
        con.close()
    frac = opts.sample if opts.sample is not None else 1.0
    out: dict[str, list[FileLang]] = {}
    for path, sha in shas.items():
        if "options" not in frame.columns:
            break
        hit = frame.filter((pl.col("file_sha256") == sha) & (pl.col("tokenizer") == opts.tokenizer)
                           & ((pl.col("sample_fraction") - frac).abs() < 1e-12) & (pl.col("seed") == opts.seed)
                           & (pl.col("options") == opts.key()) & pl.col("tokens_sq").is_not_null()
                           & (pl.col("chars_sq").is_not_null() if "chars_sq" in frame.columns else pl.lit(False)))
        if hit.height:
            out[path] = [FileLang(path, r["language"], r["docs"], r["bytes"], r["chars"], r["tokens"], r["docs_sampled"],
                                  r["bytes_sampled"], r["tokens_sq"], r["bytes_sq"], r["bytes_tokens"],
                                  r["bytes_per_token"], r["bytes_per_token_lo"], r["bytes_per_token_hi"],
                                  r["tokens_total_est"], r["tokens_total_lo"], r["tokens_total_hi"],
                                  *(r.get(k) for k in FileLang.CHAR_SUMS))
                         for r in hit.iter_rows(named=True)]
    return out


def prepare_tokenizer(opts: Options, files: list[Path], workdir: Path, keys: dict[str, str] | None = None) -> str:
    """The spec workers load. bpe-train:VOCAB trains a byte-level BPE on a sample of the corpus."""
    check_name(opts.tokenizer)
    if not opts.tokenizer.startswith("bpe-train:"):
        return opts.tokenizer
    from llmplan.tokenizers import train_bpe

    vocab = int(opts.tokenizer.split(":", 1)[1])
    budget = [BPE_SAMPLE_BYTES]

    def texts():
        for shard in corpus.plan_shards(files, opts.split, keys=keys):
            res = corpus.ShardResult(shard.path)
            for line, text, _ in corpus.documents(shard, opts, res):
                if line == -1 or corpus.in_sample(shard.file_key, line, opts.sample, opts.seed + 1):
                    yield text
                    budget[0] -= len(text)
                    if budget[0] <= 0:
                        return

    out = train_bpe(texts(), vocab, workdir / "bpe.json")
    return f"hf:{out}|{opts.tokenizer}"


def measurement_frame(rows: list[FileLang], shas: dict[str, str], opts: Options, errors: list[dict]) -> pl.DataFrame:
    bad = {}
    for e in errors:
        bad[e["file"]] = bad.get(e["file"], 0) + e["count"]
    now = datetime.now(timezone.utc)
    return pl.DataFrame([{
        "path": str(Path(r.path).resolve()), "file_sha256": shas[r.path], "language": r.language, "tokenizer": opts.tokenizer,
        "docs": r.docs, "bytes": r.bytes, "chars": r.chars, "tokens": r.tokens, "docs_sampled": r.docs_sampled,
        "bytes_sampled": r.bytes_sampled, "tokens_sq": r.tokens_sq, "bytes_sq": r.bytes_sq, "bytes_tokens": r.bytes_tokens,
        "sample_fraction": opts.sample if opts.sample is not None else 1.0,
        "seed": opts.seed, "options": opts.key(), "bytes_per_token": r.bytes_per_token, "bytes_per_token_lo": r.bytes_per_token_lo,
        "bytes_per_token_hi": r.bytes_per_token_hi, "tokens_total_est": r.tokens_total_est,
        "tokens_total_lo": r.tokens_total_lo, "tokens_total_hi": r.tokens_total_hi,
        "bad_records": bad.get(r.path, 0), "scanned_at": now, **{k: getattr(r, k) for k in FileLang.CHAR_SUMS}}
        for r in rows])


def store(wh_path: Path, frame: pl.DataFrame) -> None:
    """All rows of a scan in one all-or-nothing write; a re-measured file replaces its old rows."""
    if frame.height == 0:
        return
    with warehouse.writer_lock(wh_path), warehouse.transaction_file(wh_path) as con:
        keys = frame.select("file_sha256", "tokenizer", "sample_fraction", "seed", "options").unique()
        for r in keys.iter_rows(named=True):
            con.execute("DELETE FROM raw.corpus_measurements WHERE file_sha256 = ? AND tokenizer = ? "
                        "AND sample_fraction = ? AND seed = ? AND (options = ? OR options IS NULL)",
                        [r["file_sha256"], r["tokenizer"], r["sample_fraction"], r["seed"], r["options"]])
        warehouse.append(con, "raw.corpus_measurements", frame)


def _scan_local(shards: list[Shard], opts: Options, spec: str, workers: int,
                on_done: Callable[[Shard], None] | None) -> list[corpus.ShardResult]:
    if workers <= 1 or len(shards) == 1:
        threads = max(workers, 1)
        out = []
        for s in shards:
            out.append(corpus.scan_shard(s, opts, spec, threads))
            if on_done:
                on_done(s)
        return out
    results: list[corpus.ShardResult] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futs = {pool.submit(corpus.scan_shard, s, opts, spec, 1): s for s in shards}
        for f in as_completed(futs):
            results.append(f.result())
            if on_done:
                on_done(futs[f])
    return results


def shard_size(s: Shard) -> int:
    size = Path(s.path).stat().st_size
    if s.row_group is not None:
        return size  # reported once per file by the caller
    return (s.end if s.end is not None else size) - s.start


def scan(paths: list[str], opts: Options, wh_path: Path | None = None, workers: int | None = None,
         progress: Callable[[int, int], None] | None = None, runner: Callable | None = None) -> dict:
    """Scan, store (when wh_path is given) and return the summary dict (the CLI's JSON).

    runner(shards, opts, spec) -> list[ShardResult] replaces the local process pool (the flow
    passes one that submits Prefect tasks)."""
    if opts.sample is not None and not (0 < opts.sample <= 1):
        raise LlmplanError(f"--sample must be in (0, 1], got {opts.sample}")
    files = corpus.discover(paths)
    shas = {str(f): corpus.file_sha256(f) for f in files}
    done = stored_rows(wh_path, shas, opts) if wh_path else {}
    todo = [f for f in files if str(f) not in done]
    workers = workers or os.cpu_count() or 1
    rows, errors = [], []
    if todo:
        with tempfile.TemporaryDirectory(prefix="llmplan-bpe-") as tmp:
            spec = prepare_tokenizer(opts, todo, Path(tmp), shas)
            shards = corpus.plan_shards(todo, opts.split, workers, keys=shas)
            total = sum(Path(f).stat().st_size for f in todo)
            seen_files: set[str] = set()
            done_bytes = [0]

            def on_done(s: Shard) -> None:
                if s.row_group is not None:
                    if s.path in seen_files:
                        return
                    seen_files.add(s.path)
                done_bytes[0] += shard_size(s)
                if progress:
                    progress(done_bytes[0], total)

            results = runner(shards, opts, spec) if runner else _scan_local(shards, opts, spec, workers, on_done)
            rows, errors = corpus.merge(results, opts)
    if wh_path and rows:
        store(wh_path, measurement_frame(rows, shas, opts, errors))
    all_rows = rows + [r for rs in done.values() for r in rs]
    return corpus.summarise(all_rows, errors, opts.tokenizer, len(files), opts.sample, sorted(done))
