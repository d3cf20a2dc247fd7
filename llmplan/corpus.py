"""Measure a corpus: documents, UTF-8 bytes, characters and tokens per (file, language), streamed.

Why streamed shards: peak memory must not grow with the corpus, and a 2-core machine should
tokenize on both cores. Uncompressed .jsonl/.txt files larger than SHARD_BYTES are cut into
byte ranges at line (or blank-line) boundaries; each shard is read, decoded and tokenized
in batches by one worker process (or a Prefect/Dask task). Compressed files and Parquet row
groups are shards of their own.

Formats: .txt (one document per file, or per blank-line paragraph with split='paragraphs';
a large document is tokenized in pieces of ≥ 1 MB cut at paragraph boundaries), .jsonl (one
document per record), each optionally .gz/.zst, and .parquet (a text column).

Bad records are counted per file with their first line numbers and skipped; the rest of the
file is still scanned: a truncated gzip/zstd stream (counts up to the cut), invalid UTF-8, a
JSON line that does not parse, a record without the text field.

Language: from a field, a flag, or a script detector over the first 2,000 characters: any
kana → ja; Hangul → ko; Han without kana → zh; code-like (≥ 6 % of characters in {}();=<>[]
and most lines indented or ending in ; { }) → code; mostly Latin letters → `latin_as` (en);
otherwise 'und'.

Sampling: a document is in the sample when blake2b(seed, file, line) / 2⁶⁴ < fraction — file =
the file's content hash, so one-document files and several JSONL files do not share their
sampled lines, the draw does not depend on where the file lives or how it is sharded, and a
cryptographic hash has none of crc32's linear structure. All documents are read (bytes and
characters are exact); tokens are counted on the sample.

Estimation, one rule everywhere (ratio_estimate / pooled_estimate): the sampling unit is the
document (a file, when a file is one document; a large document encoded in pieces is still one
unit). Per language, tokens of the sampled documents are regressed on their bytes and characters
(known for every document, since all are read) and the corpus total predicted from all bytes and
characters — the regression estimator, which with bytes alone is the combined ratio estimator
r·X — with variance N²(1−f)/n · Σe²/(n − p) over the documents' residuals, summed over sampling
fractions (strata); see total_variance. Bytes/token and its 95 % interval are X divided by the
tokens and their interval. Files are pooled through their sums (of tokens, bytes, characters,
their squares and products, stored per file), not through per-file intervals: a file with one
document has no interval of its own. spread_log_sd says how far the ratio may be from the
language's ratio in text the scan did not see (what a plan weighs it by).
"""

import gzip
import hashlib
import io
import json
import math
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from llmplan.errors import LlmplanError

SHARD_BYTES = 16 << 20          # split uncompressed files into shards of at most this size …
MIN_SHARD_BYTES = 1 << 20       # … and at least this size
BATCH_BYTES = 1 << 20           # tokenize in batches of about this many bytes
PIECE_BYTES = 1 << 20           # a large plain-text document is encoded in pieces of ≥ 1 MB
MAX_ERROR_LINES = 5
SUFFIXES = (".txt", ".jsonl", ".parquet", ".txt.gz", ".txt.zst", ".jsonl.gz", ".jsonl.zst")


@dataclass(frozen=True)
class Options:
    tokenizer: str
    lang: str | None = None
    lang_field: str | None = None
    text_field: str = "text"
    sample: float | None = None
    seed: int = 0
    split: str = "document"      # or 'paragraphs' for .txt
    latin_as: str = "en"

    def key(self) -> str:
        """Every option that changes what a scan counts, besides tokenizer, sample and seed (which
        have columns of their own): a stored measurement is reused only under the same key."""
        return json.dumps({"lang": self.lang, "lang_field": self.lang_field, "text_field": self.text_field,
                           "split": self.split, "latin_as": self.latin_as}, sort_keys=True)


@dataclass(frozen=True)
class Shard:
    path: str
    start: int = 0
    end: int | None = None        # None: to the end (whole file / stream)
    index: int = 0
    first_line: int = 1           # line number of the shard's first line
    row_group: int | None = None  # parquet
    file_key: str = ""            # the file's content hash: part of the sampling draw


@dataclass
class LangStats:
    docs: int = 0
    bytes: int = 0
    chars: int = 0
    docs_s: int = 0               # sampled
    bytes_s: int = 0
    tokens_s: int = 0
    sxx: float = 0.0              # Σ tokens², Σ bytes², Σ bytes·tokens over the sample
    syy: float = 0.0
    sxy: float = 0.0
    # characters as a second size measure (regression estimator, see total_variance): Σ chars,
    # Σ chars², Σ bytes·chars, Σ tokens·chars, Σ chars²/bytes, Σ tokens·chars/bytes over the
    # sample; NaN when unknown (rows stored before they were recorded)
    chars_s: float = 0.0
    szz: float = 0.0
    syz: float = 0.0
    sxz: float = 0.0
    szz_y: float = 0.0
    sxz_y: float = 0.0

    def add(self, other: "LangStats") -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))


@dataclass
class ShardResult:
    path: str
    langs: dict[str, LangStats] = field(default_factory=dict)
    errors: dict[str, list] = field(default_factory=dict)     # kind -> [count, first lines]
    bytes_read: int = 0

    def error(self, kind: str, line: int | None) -> None:
        e = self.errors.setdefault(kind, [0, []])
        e[0] += 1
        if line is not None and len(e[1]) < MAX_ERROR_LINES:
            e[1].append(line)


# -- discovery ----------------------------------------------------------------------------

def discover(paths: list[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise LlmplanError(f"{p}: no such file or directory")
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(SUFFIXES))
            if not found:
                raise LlmplanError(f"{p}: no corpus files in it (expected {', '.join(SUFFIXES)})")
            out.extend(found)
        else:
            if not p.name.lower().endswith(SUFFIXES):
                raise LlmplanError(f"{p}: unsupported file type; expected one of {', '.join(SUFFIXES)}")
            out.append(p)
        for f in out:
            if not os.access(f, os.R_OK):
                raise LlmplanError(f"{f}: cannot be read (permission denied)")
    return list(dict.fromkeys(out))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _kind(path: str) -> tuple[str, str]:
    """(format, compression)"""
    name = path.lower()
    comp = "gz" if name.endswith(".gz") else "zst" if name.endswith(".zst") else ""
    base = name[: -len(comp) - 1] if comp else name
    return (base.rsplit(".", 1)[-1], comp)


def plan_shards(files: list[Path], split: str = "document", workers: int = 1,
                keys: dict[str, str] | None = None) -> list[Shard]:
    """Shards of about total/(4·workers) bytes (1–16 MB), so every worker stays busy to the end.
    `keys` maps a path to its content hash (file_sha256), the file's part of the sampling draw."""
    keys = keys or {}
    total = sum(f.stat().st_size for f in files)
    target = int(min(SHARD_BYTES, max(MIN_SHARD_BYTES, total / (4 * max(workers, 1)))))
    shards: list[Shard] = []
    for f in files:
        fmt, comp = _kind(str(f))
        size = f.stat().st_size
        key = keys.get(str(f)) or str(f)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            n = pq.ParquetFile(f).num_row_groups
            shards.extend(Shard(str(f), index=i, row_group=i, file_key=key) for i in range(max(n, 1)))
        elif comp or size <= target or (fmt == "txt" and split != "paragraphs"):
            shards.append(Shard(str(f), file_key=key))
        else:
            shards.extend(_split(f, size, paragraphs=(fmt == "txt"), target=target, key=key))
    return shards


def _split(f: Path, size: int, paragraphs: bool, target: int = SHARD_BYTES, key: str = "") -> list[Shard]:
    """Cut an uncompressed file at record boundaries (newline, or blank line for paragraphs)."""
    cuts = [0]
    sep = b"\n\n" if paragraphs else b"\n"
    with open(f, "rb") as fh:
        pos = target
        while pos < size:
            fh.seek(pos)
            buf = fh.read(1 << 20)
            i = buf.find(sep)
            while i < 0 and buf:
                more = fh.read(1 << 20)
                if not more:
                    break
                buf += more
                i = buf.find(sep)
            if i < 0:
                break
            cut = pos + i + len(sep)
            if cut >= size:
                break
            cuts.append(cut)
            pos = cut + target
        shards, line = [], 1
        for k, start in enumerate(cuts):
            end = cuts[k + 1] if k + 1 < len(cuts) else None
            shards.append(Shard(str(f), start, end, k, line, file_key=key))
            if end is not None:
                fh.seek(start)
                line += fh.read(end - start).count(b"\n")
    return shards


# -- reading ------------------------------------------------------------------------------

class _ZstdReader(io.RawIOBase):
    """Zstandard frames streamed; unlike zstandard's stream_reader it *raises* on a stream that
    ends inside a frame (a truncated file), so the cut is counted instead of silently ignored."""

    def __init__(self, path: str):
        import zstandard

        self._zstd = zstandard
        self._fh = open(path, "rb")
        self._d = zstandard.ZstdDecompressor().decompressobj()
        self._buf = b""
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            chunk = self._fh.read(1 << 16)
            if not chunk:
                if self._in_frame:
                    raise OSError("zstd stream ends inside a frame (truncated file)")
                return 0
            while chunk:
                self._in_frame = True
                self._buf += self._d.decompress(chunk)
                if self._d.eof:
                    chunk = self._d.unused_data
                    self._d = self._zstd.ZstdDecompressor().decompressobj()
                    self._in_frame = False
                else:
                    chunk = b""
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def _open_binary(path: str, comp: str):
    if comp == "gz":
        return gzip.open(path, "rb")
    if comp == "zst":
        return io.BufferedReader(_ZstdReader(path), buffer_size=1 << 16)
    return open(path, "rb")


def _lines(shard: Shard, comp: str, res: ShardResult):
    """(line number, bytes) for each line of the shard; a truncated stream is counted, not raised."""
    fh = _open_binary(shard.path, comp)
    try:
        if shard.start:
            fh.seek(shard.start)
        line, remaining = shard.first_line, (shard.end - shard.start) if shard.end is not None else None
        while True:
            try:
                raw = fh.readline()
            except (EOFError, gzip.BadGzipFile, OSError, zlib.error) as e:
                res.error("truncated or corrupt stream", line)
                del e
                return
            except Exception as e:  # zstandard.ZstdError
                if type(e).__name__ == "ZstdError":
                    res.error("truncated or corrupt stream", line)
                    return
                raise
            if not raw:
                return
            res.bytes_read += len(raw)
            yield line, raw
            line += 1
            if remaining is not None:
                remaining -= len(raw)
                if remaining <= 0:
                    return
    finally:
        fh.close()


def _decode(raw: bytes, line: int, res: ShardResult) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        res.error("invalid UTF-8", line)
        return None


def documents(shard: Shard, opts: Options, res: ShardResult):
    """(line, text, language or None) for every document of a shard; pieces of one large
    plain-text document come with line = -1 after the first (they count as one document)."""
    fmt, comp = _kind(shard.path)
    if fmt == "parquet":
        yield from _parquet_docs(shard, opts, res)
        return
    if fmt == "jsonl":
        for line, raw in _lines(shard, comp, res):
            if not raw.strip():
                continue
            text = _decode(raw, line, res)
            if text is None:
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError:
                res.error("JSON line does not parse", line)
                continue
            value = rec.get(opts.text_field) if isinstance(rec, dict) else None
            if not isinstance(value, str):
                res.error(f"record without a string '{opts.text_field}' field", line)
                continue
            lang = rec.get(opts.lang_field) if opts.lang_field else None
            yield line, value, (str(lang) if lang is not None else None)
        return
    # plain text: paragraphs, or one document per file in ≥ 1 MB pieces cut at paragraph ends
    buf: list[str] = []
    size, start_line, first_piece = 0, None, True
    for line, raw in _lines(shard, comp, res):
        text = _decode(raw, line, res)
        if text is None:
            continue
        blank = not text.strip()
        if opts.split == "paragraphs":
            if blank:
                if buf:
                    yield start_line, "".join(buf).strip("\n"), None
                    buf, start_line = [], None
                continue
            if start_line is None:
                start_line = line
            buf.append(text)
        else:
            if start_line is None:
                start_line = line
            buf.append(text)
            size += len(raw)
            if blank and size >= PIECE_BYTES:
                yield (start_line if first_piece else -1), "".join(buf), None
                buf, size, first_piece = [], 0, False
    if buf:
        piece = "".join(buf)
        if opts.split == "paragraphs":
            piece = piece.strip("\n")
        yield (start_line if (first_piece or opts.split == "paragraphs") else -1), piece, None


def _parquet_docs(shard: Shard, opts: Options, res: ShardResult):
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(shard.path)
    names = pf.schema_arrow.names
    if opts.text_field not in names:
        res.error(f"no '{opts.text_field}' column (columns: {', '.join(names)})", None)
        return
    cols = [opts.text_field] + ([opts.lang_field] if opts.lang_field and opts.lang_field in names else [])
    offset = sum(pf.metadata.row_group(i).num_rows for i in range(shard.row_group or 0))
    table = pf.read_row_group(shard.row_group or 0, columns=cols)
    texts = table.column(opts.text_field).to_pylist()
    langs = table.column(opts.lang_field).to_pylist() if len(cols) > 1 else [None] * len(texts)
    for i, (t, lg) in enumerate(zip(texts, langs)):
        row = offset + i + 1
        if not isinstance(t, str):
            res.error(f"record without a string '{opts.text_field}' field", row)
            continue
        res.bytes_read += len(t)
        yield row, t, (str(lg) if lg is not None else None)


# -- language -----------------------------------------------------------------------------

_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_CODE_CHARS = re.compile(r"[{}();=<>\[\]]")


def detect_language(text: str, latin_as: str = "en") -> str:
    """Script-based guess for unlabelled text (see the module docstring)."""
    s = text[:2000]
    if not s.strip():
        return "und"
    n = len(s)
    kana, han, hangul = len(_KANA.findall(s)), len(_HAN.findall(s)), len(_HANGUL.findall(s))
    if kana >= 5 or (kana and kana + han > 0.2 * n):
        return "ja"
    if hangul > 0.2 * n:
        return "ko"
    if han > 0.2 * n:
        return "zh"
    lines = [ln for ln in s.splitlines() if ln.strip()]
    codeish = sum(1 for ln in lines if ln.startswith(("    ", "\t")) or ln.rstrip().endswith((";", "{", "}", ":", ")")))
    if len(_CODE_CHARS.findall(s)) >= 0.06 * n and lines and codeish >= 0.5 * len(lines):
        return "code"
    if len(_LATIN.findall(s)) > 0.5 * n:
        return latin_as
    return "und"


def in_sample(file_key: str, line: int, fraction: float | None, seed: int) -> bool:
    """Bernoulli draw for one document (see the module docstring)."""
    if fraction is None or fraction >= 1.0:
        return True
    h = hashlib.blake2b(f"{seed}\x00{file_key}\x00{line}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 18446744073709551616.0 < fraction


# -- scanning -----------------------------------------------------------------------------

def scan_shard(shard: Shard, opts: Options, tokenizer_spec: str, threads: int = 1) -> ShardResult:
    """Count one shard. Memory is bounded by one batch of documents."""
    from llmplan.tokenizers import load

    counter = load(tokenizer_spec, threads)
    res = ShardResult(shard.path)
    batch: list[tuple[str, str, int, int, bool]] = []     # (lang, text, bytes, doc_id, new_doc)
    batch_bytes = 0
    doc_lang = None
    doc_sampled = True

    # pieces of one document add up before the ratio statistics see them — across batches too:
    # a document is the sampling unit, so its squares enter the sums once, when it is complete
    open_docs: dict[tuple[str, int], list[int]] = {}       # (lang, doc) -> [bytes, tokens, chars]

    def flush(final: bool = False):
        nonlocal batch, batch_bytes
        counts = counter.count([b[1] for b in batch]) if batch else []
        for (lang, t, nb, d, _), c in zip(batch, counts):
            acc = open_docs.setdefault((lang, d), [0, 0, 0])
            acc[0] += nb
            acc[1] += c
            acc[2] += len(t)
        for key in [k for k in open_docs if final or k[1] != doc_id]:
            nb, c, nc = open_docs.pop(key)
            st = res.langs.setdefault(key[0], LangStats())
            st.bytes_s += nb
            st.tokens_s += c
            st.sxx += c * c
            st.syy += nb * nb
            st.sxy += nb * c
            st.chars_s += nc
            st.szz += nc * nc
            st.syz += nb * nc
            st.sxz += c * nc
            if nb:
                st.szz_y += nc * nc / nb
                st.sxz_y += c * nc / nb
        batch, batch_bytes = [], 0

    doc_id = 0
    for line, text, lang in documents(shard, opts, res):
        new_doc = line != -1
        if new_doc:
            doc_id += 1
            doc_lang = opts.lang or lang or detect_language(text, opts.latin_as)
            doc_sampled = in_sample(shard.file_key or shard.path, line, opts.sample, opts.seed)
        st = res.langs.setdefault(doc_lang, LangStats())
        nb = len(text.encode("utf-8"))
        if new_doc:
            st.docs += 1
            if doc_sampled:
                st.docs_s += 1
        st.bytes += nb
        st.chars += len(text)
        if doc_sampled:
            batch.append((doc_lang, text, nb, doc_id, new_doc))
            batch_bytes += nb
            if batch_bytes >= BATCH_BYTES:
                flush()
    flush(final=True)
    return res


@dataclass
class FileLang:
    path: str
    language: str
    docs: int
    bytes: int
    chars: int
    tokens: int                    # counted on the sample (all documents without sampling)
    docs_sampled: int
    bytes_sampled: int
    tokens_sq: float               # Σ tokens², Σ bytes², Σ bytes·tokens over the sampled documents:
    bytes_sq: float                # what pooling files needs (pooled_estimate)
    bytes_tokens: float
    bytes_per_token: float | None  # this file's own estimate (ratio_estimate), for reading
    bytes_per_token_lo: float | None
    bytes_per_token_hi: float | None
    tokens_total_est: float | None
    tokens_total_lo: float | None
    tokens_total_hi: float | None
    chars_sampled: float = math.nan   # the character sums of LangStats (regression estimator)
    chars_sq: float = math.nan
    bytes_chars: float = math.nan
    tokens_chars: float = math.nan
    chars_sq_per_byte: float = math.nan
    tokens_chars_per_byte: float = math.nan

    CHAR_SUMS = ("chars_sampled", "chars_sq", "bytes_chars", "tokens_chars", "chars_sq_per_byte", "tokens_chars_per_byte")

    def stats(self) -> LangStats:
        return LangStats(self.docs, self.bytes, self.chars, self.docs_sampled, self.bytes_sampled, self.tokens,
                         self.tokens_sq, self.bytes_sq, self.bytes_tokens,
                         *(math.nan if v is None else v for v in (getattr(self, k) for k in self.CHAR_SUMS)))


Z95 = 1.959963984540054
# Overdispersion of token counts: the between-document variance of tokens − r·bytes per token
# counted, Σd²/Σt. On the Debian Reference (en, ja, fr; paragraphs) it is 25–43 with mistral-sp-v1
# and tekken (bench/corpus_scan.py --debian prints the six); the median, 38, is the floor of a
# measurement's spread when it has too few documents to show its own (one 1 kB file): a plan's
# corpus is not the scanned text, and ~900 tokens of it say little about GBs of the language.
DISPERSION = 38.0


def _ratio_fit(st: LangStats) -> tuple[float, float, int]:
    """(tokens per byte, Σ residual², parameters) of the ratio model tokens ≈ r·bytes."""
    r = st.tokens_s / st.bytes_s
    return r, max(st.sxx - 2 * r * st.sxy + r * r * st.syy, 0.0), 1


def _regression_fit(st: LangStats) -> tuple[float, float, float, int] | None:
    """tokens ≈ β_b·bytes + β_c·chars by least squares weighted 1/bytes (the ratio estimator's own
    model, with characters as a second size measure: a document's share of multi-byte script
    moves both its tokens per byte and its characters per byte). (β_b, β_c, Σ residual², rank);
    None when the character sums are unknown. Collinear sizes (ASCII text: chars = bytes) give
    the minimum-norm β, whose prediction is the ratio estimator's."""
    import numpy as np

    if any(math.isnan(v) for v in (st.chars_s, st.szz, st.syz, st.sxz, st.szz_y, st.sxz_y)):
        return None
    a = np.array([[st.bytes_s, st.chars_s], [st.chars_s, st.szz_y]], float)
    beta, _, rank, _ = np.linalg.lstsq(a, np.array([st.tokens_s, st.sxz_y], float), rcond=1e-9)
    bb, bc = float(beta[0]), float(beta[1])
    sse = (st.sxx - 2 * (bb * st.sxy + bc * st.sxz) + bb * bb * st.syy + 2 * bb * bc * st.syz + bc * bc * st.szz)
    return bb, bc, max(sse, 0.0), int(rank)


def total_variance(st: LangStats, fraction: float | None) -> tuple[float | None, float | None]:
    """(estimated tokens of all documents, its variance), None where unknown. Every document
    (the sampling unit) is read, so its bytes and characters are known for all of them; tokens of
    the sampled ones are regressed on both (_regression_fit) and the totals predicted:
    T̂ = β_b·X_bytes + β_c·X_chars, variance N²(1−f)/n · Σe²/(n − p) over the documents' residuals
    e (Särndal, Swensson & Wretman 1992, §6.5: the regression estimator; with bytes alone it is
    the combined ratio estimator, §7.3). Falls back to the ratio alone when the character sums are
    unknown or too few documents were sampled to fit two coefficients. Variance None when fewer
    than two documents were sampled."""
    if st.tokens_s == 0 or st.bytes_s == 0:
        return None, None
    if fraction is None or fraction >= 1.0:
        return float(st.tokens_s) * st.bytes / st.bytes_s, 0.0
    n = st.docs_s
    reg = _regression_fit(st) if n > 3 else None
    if reg is not None and reg[3] == 2:
        bb, bc, sse, p = reg
        total = bb * st.bytes + bc * st.chars
    else:
        r, sse, p = _ratio_fit(st)
        total = r * st.bytes
    if n <= p:
        return total, None
    return total, st.docs ** 2 * (1 - fraction) * sse / (n - p) / n


def spread_log_sd(strata: list[tuple[LangStats, float | None]]) -> float | None:
    """How far the measured bytes/token may sit from the language's ratio in text the scan did
    not see (a plan's corpus), as a standard deviation on the log scale: the between-document
    variance of the ratio, Σ N²/n · s_d² / T² with d = tokens − r·bytes (no finite-population
    correction: the scanned files are a sample of the language, however fully they were read),
    and at least DISPERSION / tokens counted. None when nothing was counted."""
    counted = sum(st.tokens_s for st, _ in strata)
    if counted <= 0 or any(st.bytes_s == 0 for st, _ in strata):
        return None
    var, total = 0.0, 0.0
    for st, _ in strata:
        r, sse, _ = _ratio_fit(st)
        total += r * st.bytes
        if st.docs_s > 1:
            var += st.docs ** 2 * sse / (st.docs_s - 1) / st.docs_s
    return math.sqrt(max(var / total ** 2 if total else 0.0, DISPERSION / counted))


def pooled_estimate(strata: list[tuple[LangStats, float | None]]) -> dict:
    """One estimate from several sampling fractions (strata): totals and variances add.
    Returns tokens, tokens_ci95, bytes_per_token, bytes_per_token_ci95 and log_sd (spread_log_sd;
    None where unknown)."""
    tokens, var, nbytes = 0.0, 0.0, 0
    for st, fraction in strata:
        t, v = total_variance(st, fraction)
        if t is None:
            return {"tokens": None, "tokens_ci95": None, "bytes_per_token": None, "bytes_per_token_ci95": None,
                    "log_sd": None}
        tokens += t
        var = None if v is None or var is None else var + v
        nbytes += st.bytes
    ci = None if var is None else [tokens - Z95 * math.sqrt(var), tokens + Z95 * math.sqrt(var)]
    bpt_ci = None if ci is None or ci[0] <= 0 else [nbytes / ci[1], nbytes / ci[0]]
    return {"tokens": tokens, "tokens_ci95": ci, "bytes_per_token": nbytes / tokens if tokens else None,
            "bytes_per_token_ci95": bpt_ci, "log_sd": spread_log_sd(strata)}


def ratio_estimate(st: LangStats, fraction: float | None) -> tuple:
    """(bytes/token, lo, hi, total tokens, lo, hi) for one file and language (pooled_estimate)."""
    e = pooled_estimate([(st, fraction)])
    bci, tci = e["bytes_per_token_ci95"] or (None, None), e["tokens_ci95"] or (None, None)
    return e["bytes_per_token"], bci[0], bci[1], e["tokens"], tci[0], tci[1]


def merge(results: list[ShardResult], opts: Options) -> tuple[list[FileLang], list[dict]]:
    by_file: dict[tuple[str, str], LangStats] = {}
    errors: dict[str, dict[str, list]] = {}
    for r in results:
        for lang, st in r.langs.items():
            by_file.setdefault((r.path, lang), LangStats()).add(st)
        fe = errors.setdefault(r.path, {})
        for kind, (n, lines) in r.errors.items():
            e = fe.setdefault(kind, [0, []])
            e[0] += n
            e[1] = sorted(e[1] + lines)[:MAX_ERROR_LINES]
    rows = []
    for (path, lang), st in sorted(by_file.items()):
        if st.docs == 0:
            continue
        est = ratio_estimate(st, opts.sample)
        rows.append(FileLang(path, lang, st.docs, st.bytes, st.chars, st.tokens_s, st.docs_s, st.bytes_s,
                             st.sxx, st.syy, st.sxy, *est, st.chars_s, st.szz, st.syz, st.sxz, st.szz_y, st.sxz_y))
    errs = [{"file": p, "kind": k, "count": n, "first_lines": lines}
            for p, kinds in sorted(errors.items()) for k, (n, lines) in sorted(kinds.items())]
    return rows, errs


def summarise(rows: list[FileLang], errors: list[dict], tokenizer: str, n_files: int, sample: float | None,
              skipped: list[str] | None = None) -> dict:
    """The JSON the CLI prints: per language the exact docs, bytes and characters, and tokens and
    bytes/token with their 95 % intervals from one estimator over all files (pooled_estimate)."""
    langs: dict[str, LangStats] = {}
    for r in rows:
        langs.setdefault(r.language, LangStats()).add(r.stats())
    out = []
    sampled = sample is not None and sample < 1.0
    for lang, st in sorted(langs.items()):
        e = pooled_estimate([(st, sample)])
        entry = {"language": lang, "docs": st.docs, "bytes": st.bytes, "chars": st.chars,
                 "tokens": (round(e["tokens"]) if not sampled and e["tokens"] is not None else e["tokens"]),
                 "bytes_per_token": e["bytes_per_token"],
                 "tokens_ci95": e["tokens_ci95"] if sampled else None}
        if sampled:
            entry["tokens_counted"] = st.tokens_s
            entry["docs_sampled"] = st.docs_s
            entry["bytes_per_token_ci95"] = e["bytes_per_token_ci95"]
        out.append(entry)
    return {"tokenizer": tokenizer, "files": n_files, "sample": sample, "languages": out, "errors": errors,
            "skipped_unchanged": skipped or []}
