"""Corpus measurement on generated multilingual fixtures, broken files included."""

import gzip
import json
from pathlib import Path

import pytest

from llmplan import corpus
from llmplan.corpus import Options, detect_language
from llmplan.corpus_scan import scan
from llmplan.errors import LlmplanError
from llmplan.tokenizers import BUILTINS

EN = ["The quick brown fox jumps over the lazy dog number {i}. Planning a pretraining run needs data.",
      "Accelerators differ: an H100 is not three A100s in practice, run {i} showed."]
JA = ["日本語の文章はUTF-8で一文字三バイトです。計画{i}番目の例文です。",
      "東京で大規模言語モデルを学習するには多くのデータが必要です（{i}）。"]
CODE = "def f{i}(x):\n    return [y * 2 for y in range(x)]  # {i}\n"


def _docs(n=60):
    out = []
    for i in range(n):
        out.append({"text": EN[i % 2].format(i=i), "lang": "en"})
        out.append({"text": JA[i % 2].format(i=i), "lang": "ja"})
        out.append({"text": CODE.format(i=i), "lang": "code"})
    return out


def _jsonl(docs) -> bytes:
    return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    d = tmp_path / "corpus"
    d.mkdir()
    docs = _docs()
    (d / "mix.jsonl").write_bytes(_jsonl(docs))
    (d / "mix.jsonl.gz").write_bytes(gzip.compress(_jsonl(docs)))
    (d / "mix.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(_jsonl(docs)))
    pq.write_table(pa.table({"text": [x["text"] for x in docs], "lang": [x["lang"] for x in docs]}), d / "mix.parquet",
                   row_group_size=50)
    (d / "paras.txt").write_text("\n\n".join(x["text"] for x in docs if x["lang"] != "code") + "\n", encoding="utf-8")
    return d


def _python_truth(docs):
    by = {}
    for x in docs:
        b = by.setdefault(x["lang"], [0, 0, 0])
        b[0] += 1
        b[1] += len(x["text"].encode("utf-8"))
        b[2] += len(x["text"])
    return by


@pytest.mark.parametrize("name", ["mix.jsonl", "mix.jsonl.gz", "mix.jsonl.zst", "mix.parquet"])
def test_every_format_counts_exactly(corpus_dir, name):
    s = scan([str(corpus_dir / name)], Options("bytes", lang_field="lang"), None, workers=1)
    truth = _python_truth(_docs())
    got = {r["language"]: [r["docs"], r["bytes"], r["chars"]] for r in s["languages"]}
    assert got == truth
    assert all(r["tokens"] == r["bytes"] and r["bytes_per_token"] == 1.0 for r in s["languages"])
    assert s["errors"] == []


def test_txt_paragraphs_and_documents(corpus_dir):
    docs = [x for x in _docs() if x["lang"] != "code"]
    s = scan([str(corpus_dir / "paras.txt")], Options("bytes", split="paragraphs"), None, workers=1)
    got = {r["language"]: r["docs"] for r in s["languages"]}
    assert got == {"en": 60, "ja": 60}                      # script detector, per paragraph
    s = scan([str(corpus_dir / "paras.txt")], Options("bytes", lang="ja"), None, workers=1)
    assert s["languages"][0]["docs"] == 1
    assert s["languages"][0]["bytes"] == (corpus_dir / "paras.txt").stat().st_size
    del docs


def test_directories_are_walked_and_shards_split_large_files(corpus_dir, monkeypatch):
    monkeypatch.setattr(corpus, "SHARD_BYTES", 2048)
    monkeypatch.setattr(corpus, "MIN_SHARD_BYTES", 2048)
    shards = corpus.plan_shards([corpus_dir / "mix.jsonl"])
    assert len(shards) > 3 and shards[0].start == 0 and shards[1].first_line > 1
    s = scan([str(corpus_dir)], Options("bytes", lang_field="lang"), None, workers=2)
    assert s["files"] == 5
    ja = next(r for r in s["languages"] if r["language"] == "ja")
    assert ja["docs"] == 60 * 4 + 1                          # four record formats + paras.txt as one document (kana → ja)


def _sp_truth(texts):
    import sentencepiece as spm

    kind, path = BUILTINS["mistral-sp-v1"]()
    sp = spm.SentencePieceProcessor(model_file=str(path))
    return sum(len(x) for x in sp.encode(texts))


def test_tokenizer_kinds_agree_with_the_libraries(corpus_dir, tmp_path):
    import tiktoken  # noqa: F401
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    texts = [x["text"] for x in _docs()]
    f = str(corpus_dir / "mix.jsonl")
    s = scan([f], Options("mistral-sp-v1", lang="all"), None, workers=1)
    assert s["languages"][0]["tokens"] == _sp_truth(texts)
    kind, path = BUILTINS["mistral-sp-v1"]()
    s2 = scan([f], Options(f"sp:{path}", lang="all"), None, workers=1)
    assert s2["languages"][0]["tokens"] == s["languages"][0]["tokens"]
    tk = Tekkenizer.from_file(str(BUILTINS["tekken"]()[1]))
    s = scan([f], Options("tekken", lang="all"), None, workers=1)
    assert s["languages"][0]["tokens"] == sum(len(tk.encode(t, bos=False, eos=False)) for t in texts)
    # hf:PATH with a small tokenizer.json made here
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"]))
    tok.save(str(tmp_path / "tokenizer.json"))
    s = scan([f], Options(f"hf:{tmp_path / 'tokenizer.json'}", lang="all"), None, workers=1)
    assert s["languages"][0]["tokens"] == sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
    # bpe-train: trained on the corpus itself
    s = scan([f], Options("bpe-train:400", lang_field="lang"), None, workers=1)
    ja = next(r for r in s["languages"] if r["language"] == "ja")
    assert s["tokenizer"] == "bpe-train:400" and 1.0 < ja["bytes_per_token"] < 20


def test_unknown_tokenizer_and_paths_are_clear_errors(tmp_path, corpus_dir):
    with pytest.raises(LlmplanError, match="unknown tokenizer"):
        scan([str(corpus_dir / "mix.jsonl")], Options("gpt5"), None)
    with pytest.raises(LlmplanError, match="no such file"):
        scan([str(tmp_path / "missing.jsonl")], Options("bytes"), None)
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(LlmplanError, match="unsupported file type"):
        scan([str(tmp_path / "x.csv")], Options("bytes"), None)


def test_broken_files_are_counted_with_first_lines_and_the_rest_scanned(tmp_path):
    import zstandard

    docs = _docs(20)
    good = _jsonl(docs)
    lines = good.splitlines(keepends=True)
    broken = list(lines)
    broken[2] = b'{"text": "bad \xff utf8", "lang": "en"}\n'
    broken[5] = b'{"text": "unterminated\n'
    broken[7] = b'{"body": "no text field", "lang": "en"}\n'
    d = tmp_path / "c"
    d.mkdir()
    (d / "broken.jsonl").write_bytes(b"".join(broken))
    gz = gzip.compress(good)
    (d / "cut.jsonl.gz").write_bytes(gz[: len(gz) // 2])
    zs = zstandard.ZstdCompressor().compress(good)
    (d / "cut.jsonl.zst").write_bytes(zs[: len(zs) // 2])
    s = scan([str(d)], Options("bytes", lang_field="lang"), None, workers=1)
    errs = {(Path(e["file"]).name, e["kind"]): e for e in s["errors"]}
    assert errs[("broken.jsonl", "invalid UTF-8")]["first_lines"] == [3]
    assert errs[("broken.jsonl", "JSON line does not parse")]["first_lines"] == [6]
    assert errs[("broken.jsonl", "record without a string 'text' field")]["first_lines"] == [8]
    assert errs[("cut.jsonl.gz", "truncated or corrupt stream")]["count"] == 1
    assert errs[("cut.jsonl.zst", "truncated or corrupt stream")]["count"] == 1
    total_docs = sum(r["docs"] for r in s["languages"])
    assert len(docs) - 3 + 2 < total_docs < 3 * len(docs) - 3   # the rest of each file was scanned


def test_sampling_estimates_bytes_per_token_within_2_percent_inside_its_interval(tmp_path):
    import random

    rng = random.Random(5)
    words = ["planning", "tokens", "accelerator", "memory", "budget", "corpus", "language", "model", "days", "cluster",
             "データ", "学習", "計画", "東京", "モデル"]
    docs = [{"text": " ".join(rng.choice(words) for _ in range(rng.randint(20, 200)))} for _ in range(12000)]
    f = tmp_path / "big.jsonl"
    f.write_bytes(_jsonl(docs))
    full = scan([str(f)], Options("mistral-sp-v1", lang="x"), None, workers=1)["languages"][0]
    part = scan([str(f)], Options("mistral-sp-v1", lang="x", sample=0.05, seed=3), None, workers=1)["languages"][0]
    assert abs(part["bytes_per_token"] / full["bytes_per_token"] - 1) < 0.02
    lo, hi = part["bytes_per_token_ci95"]
    assert lo <= full["bytes_per_token"] <= hi
    tlo, thi = part["tokens_ci95"]
    assert tlo <= full["tokens"] <= thi
    assert part["tokens_counted"] < 0.1 * full["tokens"]


def test_language_detector():
    assert detect_language("これは日本語の文章です。") == "ja"
    assert detect_language("한국어 문장입니다. 대규모 언어 모델") == "ko"
    assert detect_language("这是一个中文句子，用于测试语言检测。") == "zh"
    assert detect_language("def f(x):\n    return [y for y in range(x)]\n\nclass A:\n    pass\n") == "code"
    assert detect_language("A plain English sentence about training.") == "en"
    assert detect_language("Une phrase française.", latin_as="fr") == "fr"


def test_store_skip_unchanged_and_no_partial_rows(corpus_dir, tmp_path):
    from tests.helpers import file_sha

    wh = tmp_path / "w.duckdb"
    f = str(corpus_dir / "mix.jsonl")
    s1 = scan([f], Options("mistral-sp-v1", lang_field="lang"), wh, workers=1)
    import duckdb

    with duckdb.connect(str(wh), read_only=True) as con:
        rows = con.sql("SELECT * FROM raw.corpus_measurements").pl()
    assert set(rows["language"]) == {"en", "ja", "code"} and (rows["tokenizer"] == "mistral-sp-v1").all()
    assert rows["file_sha256"].str.len_chars().to_list() == [64] * 3
    s2 = scan([f], Options("mistral-sp-v1", lang_field="lang"), wh, workers=1)
    assert s2["skipped_unchanged"] == [f] and s2["languages"] == s1["languages"]
    before = file_sha(wh)
    # the second file disappears after the first was counted: the scan fails part-way
    second = corpus_dir / "mix.jsonl.zst"
    with pytest.raises(FileNotFoundError):
        scan([str(corpus_dir / "mix.jsonl.gz"), str(second)], Options("bytes", lang_field="lang"), wh, workers=1,
             progress=lambda done, total: second.unlink(missing_ok=True))
    assert file_sha(wh) == before                 # the file counted before the failure left no rows
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM raw.corpus_measurements").fetchall()[0][0] == 3


def _varied_docs(n=300, seed=11):
    """Documents whose bytes/token differ (a share of Japanese words from 0 to 1) with a real tokenizer."""
    import random

    rng = random.Random(seed)
    en = "planning tokens accelerator memory budget corpus language model days cluster the of and to in".split()
    ja = ["データ", "学習", "計画", "東京", "モデル", "言語", "大規模", "です", "ます", "の", "は", "を"]
    docs = []
    for _ in range(n):
        p = rng.random()
        words = [rng.choice(ja) if rng.random() < p else rng.choice(en) for _ in range(rng.randint(20, 400))]
        docs.append(" ".join(words) + f" {rng.randint(0, 10**6)}")
    return docs


def test_many_one_document_files_are_sampled_file_by_file(tmp_path):
    """300 one-document .txt files, 25 % sample: each file is its own draw (line 1 of every file
    used to be one draw for all), so about 75 are counted and every seed gives an estimate with
    an interval (how often the interval holds the truth is tested below; here, a sanity bound:
    within 15 % of the full count, ≈ 4 standard errors)."""
    d = tmp_path / "docs"
    d.mkdir()
    docs = _varied_docs()
    for i, text in enumerate(docs):
        (d / f"{i:03d}.txt").write_text(text, encoding="utf-8")
    full = scan([str(d)], Options("mistral-sp-v1", lang="x"), None, workers=1)["languages"][0]
    for seed in (0, 1, 2):
        part = scan([str(d)], Options("mistral-sp-v1", lang="x", sample=0.25, seed=seed), None, workers=1)["languages"][0]
        assert 40 <= part["docs_sampled"] <= 110                  # Binomial(300, 0.25): 75 ± 3.3 sd
        assert part["tokens"] is not None
        lo, hi = part["tokens_ci95"]
        assert lo < part["tokens"] < hi and abs(part["tokens"] / full["tokens"] - 1) < 0.15
        # the full count (a separate, unsampled scan) lies inside every seed's interval; with the
        # ratio estimator on bytes alone seeds 0 and 2 missed it (−8.7 % against ±4.7 %)
        assert lo <= full["tokens"] <= hi, (seed, part["tokens"] / full["tokens"] - 1, (hi - lo) / 2 / part["tokens"])


def test_jsonl_files_do_not_share_their_sampled_lines(tmp_path):
    """Three JSONL files with 200 records each: the sampled line numbers differ between files."""
    from llmplan.corpus import file_sha256, in_sample

    sampled = []
    for k in range(3):
        f = tmp_path / f"part{k}.jsonl"
        f.write_bytes(_jsonl([{"text": f"file {k} record {i}"} for i in range(200)]))
        key = file_sha256(f)
        sampled.append({line for line in range(1, 201) if in_sample(key, line, 0.25, seed=0)})
    assert sampled[0] != sampled[1] and sampled[1] != sampled[2]
    assert all(20 <= len(s) <= 80 for s in sampled)
    overlap = len(sampled[0] & sampled[1]) / len(sampled[0])
    assert overlap < 0.5                                          # independent draws overlap ≈ 25 %


def test_sample_interval_holds_the_truth_at_about_its_nominal_rate():
    """400 seeds over 300 one-document files (real mistral-sp-v1 counts): the 95 % interval of total
    tokens contains the true total in 90–98 % of seeds. The draw and the estimator are the
    scanner's own (corpus.in_sample, corpus.pooled_estimate)."""
    import hashlib

    from llmplan.corpus import LangStats, in_sample, pooled_estimate
    from llmplan.tokenizers import load

    docs = _varied_docs()
    counts = load("mistral-sp-v1").count(docs)
    sizes = [len(x.encode("utf-8")) for x in docs]
    chars = [len(x) for x in docs]
    keys = [hashlib.sha256(x.encode("utf-8")).hexdigest() for x in docs]
    truth, inside, seeds = sum(counts), 0, 400
    for seed in range(seeds):
        st = LangStats(docs=len(docs), bytes=sum(sizes), chars=sum(chars))
        for k, nb, c, z in zip(keys, sizes, counts, chars):
            if in_sample(k, 1, 0.25, seed):
                st.add(LangStats(0, 0, 0, 1, nb, c, c * c, nb * nb, nb * c, z, z * z, nb * z, c * z, z * z / nb, c * z / nb))
        lo, hi = pooled_estimate([(st, 0.25)])["tokens_ci95"]
        inside += lo <= truth <= hi
    assert 0.90 <= inside / seeds <= 0.98


def test_the_regression_estimator_is_exact_on_an_exact_model_and_the_ratio_on_ascii():
    """Known answers. (1) Documents whose tokens are exactly 0.2·bytes + 0.1·chars: any sample
    gives the total exactly, with a zero-width interval. (2) ASCII documents (chars = bytes): the
    two size measures coincide and the estimate is the ratio estimator's, Σt/Σb (sampled) × all
    bytes, computed here by hand."""
    import random

    from llmplan.corpus import LangStats, pooled_estimate

    rng = random.Random(5)
    docs = [(b, z) for b, z in ((rng.randint(100, 4000), 0) for _ in range(200)) for z in [rng.randint(b // 3, b)]]
    docs = [(10 * b, 10 * z) for b, z in docs]                       # tokens stay whole numbers
    def stats(rows, tokens_of):
        st = LangStats(docs=len(docs), bytes=sum(b for b, _ in docs), chars=sum(z for _, z in docs))
        for b, z in rows:
            c = tokens_of(b, z)
            st.add(LangStats(0, 0, 0, 1, b, c, c * c, b * b, b * c, z, z * z, b * z, c * z, z * z / b, c * z / b))
        return st

    sample = docs[::4]
    exact = pooled_estimate([(stats(sample, lambda b, z: b // 5 + z // 10), 0.25)])
    assert exact["tokens"] == pytest.approx(sum(b // 5 + z // 10 for b, z in docs), rel=1e-9)
    lo, hi = exact["tokens_ci95"]
    assert hi - lo == pytest.approx(0, abs=1e-3 * exact["tokens"] ** 0.5)
    ascii_docs = [(b, b) for b, _ in docs]
    tok = lambda b, z: b // 4 + (b % 7)                                # noqa: E731 — any tokens
    st = stats(ascii_docs[::4], tok)
    st.chars = st.bytes = sum(b for b, _ in ascii_docs)
    r = sum(tok(b, b) for b, _ in ascii_docs[::4]) / sum(b for b, _ in ascii_docs[::4])
    assert pooled_estimate([(st, 0.25)])["tokens"] == pytest.approx(r * st.bytes, rel=1e-9)


def test_a_large_document_is_one_unit_however_many_pieces_it_is_encoded_in(tmp_path):
    """A 3.5 MB one-document .txt is encoded in ≥ 1 MB pieces (each its own batch); the ratio
    statistics must see one document: Σt² = (Σt)², Σb² = (Σb)², Σbt = Σb·Σt."""
    f = tmp_path / "big.txt"
    para = "Plain English text for a large single document, with some numbers 12345.\n\n"
    f.write_text(para * (3_500_000 // len(para)), encoding="utf-8")
    res = corpus.scan_shard(corpus.Shard(str(f)), Options("bytes", lang="en"), "bytes")
    st = res.langs["en"]
    assert st.docs == 1 and st.docs_s == 1 and st.bytes_s == f.stat().st_size
    assert st.sxx == st.tokens_s ** 2 and st.syy == st.bytes_s ** 2 and st.sxy == st.bytes_s * st.tokens_s
    assert st.szz == st.chars_s ** 2


def test_a_measurement_spread_is_its_between_document_variance_or_the_dispersion_floor():
    """spread_log_sd: one document of T tokens has no spread of its own → √(DISPERSION/T); many
    documents with ratios 0.15 and 0.45 tokens/byte (half each, 1,000 bytes apiece): Σd²/T² with
    r = 0.3, d = ±150 → √(n·150²)/(0.3·1000·n) (× √(n/(n−1))), above the floor (by hand)."""
    from llmplan.corpus import DISPERSION, LangStats, spread_log_sd

    one = LangStats(1, 1000, 1000, 1, 1000, 880, 880.0 ** 2, 1e6, 880e3)
    assert spread_log_sd([(one, None)]) == pytest.approx((DISPERSION / 880) ** 0.5)
    n = 400
    st = LangStats(n, 1000 * n, 1000 * n, n, 1000 * n, 300 * n, n / 2 * (150 ** 2 + 450 ** 2), n * 1e6, n / 2 * 1000 * 600)
    by_hand = (n * 150 ** 2) ** 0.5 / (300 * n) * (n / (n - 1)) ** 0.5
    assert by_hand ** 2 > DISPERSION / (300 * n)
    assert spread_log_sd([(st, None)]) == pytest.approx(by_hand)


def test_tokens_and_their_interval_come_from_one_estimator(corpus_dir):
    """Over several files, the reported tokens sit at the centre of their interval and bytes/token
    and its interval are bytes ÷ those (not a union of per-file intervals)."""
    paths = [str(corpus_dir / n) for n in ("mix.jsonl", "mix.jsonl.gz", "mix.parquet")]
    s = scan(paths, Options("mistral-sp-v1", lang_field="lang", sample=0.5, seed=4), None, workers=1)
    for r in s["languages"]:
        lo, hi = r["tokens_ci95"]
        assert r["tokens"] == pytest.approx((lo + hi) / 2)
        assert r["bytes_per_token"] == pytest.approx(r["bytes"] / r["tokens"])
        assert r["bytes_per_token_ci95"] == pytest.approx([r["bytes"] / hi, r["bytes"] / lo])


def test_a_stored_scan_is_reused_only_with_the_same_options(corpus_dir, tmp_path):
    """The skip key holds every option that changes the count: language, language field, text
    field, split (besides content, tokenizer, sample and seed)."""
    wh = tmp_path / "w.duckdb"
    f = str(corpus_dir / "paras.txt")
    assert scan([f], Options("bytes", lang="ja"), wh, workers=1)["skipped_unchanged"] == []
    en = scan([f], Options("bytes", lang="en"), wh, workers=1)
    assert en["skipped_unchanged"] == [] and [r["language"] for r in en["languages"]] == ["en"]
    assert scan([f], Options("bytes", split="paragraphs"), wh, workers=1)["skipped_unchanged"] == []
    assert scan([f], Options("bytes", lang="ja"), wh, workers=1)["skipped_unchanged"] == [f]


def test_sampled_intervals_cover_the_full_count_on_the_debian_reference():
    """The Debian Reference in English, Japanese and French (packages debian-reference-en/-ja/-fr,
    installed by scripts/test.sh), paragraphs as documents, mistral-sp-v1: 25 % samples with
    seeds 0–2 — at least 7 of the 9 95 % intervals hold the count of a full, unsampled scan."""
    covered = 0
    for lang in ("en", "ja", "fr"):
        f = f"/usr/share/debian-reference/debian-reference.{lang}.txt.gz"
        full = scan([f], Options("mistral-sp-v1", lang=lang, split="paragraphs"), None, workers=1)["languages"][0]
        for seed in (0, 1, 2):
            part = scan([f], Options("mistral-sp-v1", lang=lang, split="paragraphs", sample=0.25, seed=seed), None,
                        workers=1)["languages"][0]
            assert 900 <= part["docs_sampled"] <= 1200                  # Binomial(≈4,185, 0.25): 1,046 ± 28
            lo, hi = part["tokens_ci95"]
            covered += lo <= full["tokens"] <= hi
    assert covered >= 7
