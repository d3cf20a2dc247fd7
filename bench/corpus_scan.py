"""Corpus-scan throughput, memory and sampling accuracy, measured against baselines in the same run.

    .venv/bin/python bench/corpus_scan.py [--mb 32] [--tokenizer mistral-sp-v1]

1. End-to-end `scan` MB/s vs. a single-process loop that only calls the same tokenizer's encode
   on the same (already decoded) documents.
2. Peak RSS (scanning process + workers) of a 10× larger corpus vs. the smaller one.
3. 5 % sample: bytes/token vs. the full count, and whether the full value is inside the interval.
"""

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS_EN = ("planning pretraining tokens accelerator memory budget corpus language model days cluster throughput "
            "utilisation checkpoint gradient optimizer sequence batch dataset evaluation restart").split()
WORDS_JA = "データ 学習 計画 東京 モデル 言語 計算 資源 日本語 文章 予算 期間 記憶 評価".split()


def make_corpus(path: Path, mb: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    target = mb << 20
    with open(path, "w", encoding="utf-8") as fh:
        size = 0
        while size < target:
            if rng.random() < 0.5:
                text = " ".join(rng.choice(WORDS_EN) for _ in range(rng.randint(50, 600))) + "."
                lang = "en"
            else:
                text = "".join(rng.choice(WORDS_JA) + ("。" if rng.random() < 0.1 else "") for _ in range(rng.randint(50, 500)))
                lang = "ja"
            line = json.dumps({"text": text, "lang": lang}, ensure_ascii=False) + "\n"
            fh.write(line)
            size += len(line.encode("utf-8"))


def child_peak(args: list[str], tokenizer: str) -> tuple[float, dict]:
    """Run a scan in a fresh process; return (peak RSS in MB of it and its workers, summary)."""
    code = ("import json, resource, sys; from llmplan.corpus import Options; from llmplan.corpus_scan import scan; "
            f"s = scan({args!r}, Options({tokenizer!r}, lang_field='lang'), None); "
            "r = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
            "print(json.dumps({'rss_kb': r, 'langs': s['languages']}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return d["rss_kb"] / 1024, d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=32)
    ap.add_argument("--tokenizer", default="mistral-sp-v1")
    a = ap.parse_args()
    from llmplan.corpus import Options
    from llmplan.corpus_scan import scan
    from llmplan.tokenizers import load

    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.jsonl"
        make_corpus(small, a.mb)
        mb = small.stat().st_size / 1e6
        print(f"corpus: {mb:.1f} MB JSONL, tokenizer {a.tokenizer}")

        texts = [json.loads(line)["text"] for line in small.open(encoding="utf-8")]
        counter = load(a.tokenizer, 1)
        t = time.perf_counter()
        base_tokens = sum(counter.count([x])[0] for x in texts)
        t_base = time.perf_counter() - t
        del texts
        t = time.perf_counter()
        s = scan([str(small)], Options(a.tokenizer, lang_field="lang"), None)
        t_scan = time.perf_counter() - t
        tokens = sum(r["tokens"] for r in s["languages"])
        assert tokens == base_tokens, (tokens, base_tokens)
        print(f"baseline (single process, encode only): {mb / t_base:.2f} MB/s")
        print(f"llmplan corpus scan (end to end):        {mb / t_scan:.2f} MB/s")
        print(f"throughput ratio scan / baseline: {t_base / t_scan:.2f}x")

        t = time.perf_counter()
        full = scan([str(small)], Options(a.tokenizer, lang="all"), None)["languages"][0]
        part = scan([str(small)], Options(a.tokenizer, lang="all", sample=0.05, seed=1), None)["languages"][0]
        t_s = time.perf_counter() - t
        err = part["bytes_per_token"] / full["bytes_per_token"] - 1
        lo, hi = part["bytes_per_token_ci95"]
        print(f"5% sample: bytes/token {part['bytes_per_token']:.4f} vs full {full['bytes_per_token']:.4f} "
              f"({err * 100:+.2f}%), 95% interval [{lo:.4f}, {hi:.4f}], full inside: {lo <= full['bytes_per_token'] <= hi} ({t_s:.1f} s)")

        big = Path(tmp) / "big"
        big.mkdir()
        for i in range(10):
            (big / f"part{i}.jsonl").write_bytes(small.read_bytes())
        rss_small, _ = child_peak([str(small)], a.tokenizer)
        rss_big, _ = child_peak([str(big)], a.tokenizer)
        print(f"peak RSS: {rss_small:.0f} MB for {mb:.0f} MB, {rss_big:.0f} MB for {10 * mb:.0f} MB "
              f"→ ratio {rss_big / rss_small:.2f}x")


if __name__ == "__main__":
    main()
