"""Token counters for corpus measurement, all offline. Every counter takes a batch of strings
and returns token counts, with no BOS/EOS added.

    bytes            UTF-8 bytes (a tokenizer-free baseline)
    sp:PATH          a SentencePiece model
    hf:PATH          a Hugging Face tokenizer.json
    mistral-sp-v1    SentencePiece, 32,000 pieces, shipped in mistral-common (tokenizer.model.v1)
    tekken           tiktoken-style BPE, 131k, shipped in mistral-common (tekken_240911.json)
    bpe-train:VOCAB  a byte-level BPE trained (HF tokenizers) on a sample of the corpus itself
"""

import functools
from pathlib import Path

from llmplan.errors import LlmplanError


def mistral_data() -> Path:
    import mistral_common

    return Path(mistral_common.__file__).resolve().parent / "data"


BUILTINS = {"mistral-sp-v1": lambda: ("sp", mistral_data() / "tokenizer.model.v1"),
            "tekken": lambda: ("tekken", mistral_data() / "tekken_240911.json")}


class Counter:
    name: str

    def count(self, texts: list[str]) -> list[int]:  # pragma: no cover - interface
        raise NotImplementedError


class BytesCounter(Counter):
    name = "bytes"

    def count(self, texts):
        return [len(t.encode("utf-8")) for t in texts]


class SentencePieceCounter(Counter):
    def __init__(self, path: Path, name: str, threads: int = 1):
        import sentencepiece as spm

        self.name, self.threads = name, threads
        self.sp = spm.SentencePieceProcessor(model_file=str(path))

    def count(self, texts):
        return [len(x) for x in self.sp.encode(texts, num_threads=self.threads)]


class HFCounter(Counter):
    def __init__(self, path: Path, name: str):
        from tokenizers import Tokenizer

        self.name = name
        self.tok = Tokenizer.from_file(str(path))

    def count(self, texts):
        return [len(e.ids) for e in self.tok.encode_batch(texts, add_special_tokens=False)]


class TekkenCounter(Counter):
    def __init__(self, path: Path, name: str, threads: int = 1):
        from mistral_common.tokens.tokenizers.tekken import Tekkenizer

        self.name, self.threads = name, threads
        self.enc = Tekkenizer.from_file(str(path))._model      # the tiktoken Encoding underneath

    def count(self, texts):
        return [len(x) for x in self.enc.encode_ordinary_batch(texts, num_threads=self.threads)]


def family(name: str | None) -> str | None:
    """Tokenizer family, so a plan can prefer ratios measured or published with a tokenizer like
    its own: sentencepiece (mistral-sp-v1, sp:PATH) or byte-level-bpe (tekken, bpe-train:…);
    None when the name does not say (an hf:PATH file can be either)."""
    if not name:
        return None
    name = name.partition("|")[0]
    if name == "bytes":
        return "bytes"
    if name == "mistral-sp-v1" or name.startswith("sp:"):
        return "sentencepiece"
    if name == "tekken" or name.startswith("bpe-train:"):
        return "byte-level-bpe"
    return None


def check_name(name: str) -> None:
    """Fail early, with the list of kinds, on a name no counter understands or a missing file."""
    if name == "bytes" or name in BUILTINS:
        return
    kind, _, arg = name.partition(":")
    if kind in ("sp", "hf"):
        if not Path(arg).is_file():
            raise LlmplanError(f"tokenizer {name!r}: no such file {arg!r}")
        return
    if kind == "bpe-train":
        try:
            if int(arg) < 256:
                raise ValueError
        except ValueError:
            raise LlmplanError(f"tokenizer {name!r}: expected bpe-train:VOCAB with VOCAB ≥ 256, e.g. bpe-train:32000") from None
        return
    raise LlmplanError(f"unknown tokenizer {name!r}; expected bytes, mistral-sp-v1, tekken, sp:PATH, hf:PATH or bpe-train:VOCAB")


@functools.lru_cache(maxsize=8)
def load(spec: str, threads: int = 1) -> Counter:
    """`spec` is a name from check_name() or, for a trained BPE, 'hf:PATH' with its display name
    after '|' ('hf:/tmp/x.json|bpe-train:32000'). Cached per process."""
    path_part, _, display = spec.partition("|")
    check_name(path_part)
    if path_part == "bytes":
        return BytesCounter()
    if path_part in BUILTINS:
        kind, path = BUILTINS[path_part]()
        if not path.is_file():
            raise LlmplanError(f"tokenizer {path_part!r}: {path} is missing; reinstall mistral-common")
        return SentencePieceCounter(path, path_part, threads) if kind == "sp" else TekkenCounter(path, path_part, threads)
    kind, _, arg = path_part.partition(":")
    if kind == "sp":
        return SentencePieceCounter(Path(arg), display or path_part, threads)
    if kind == "hf":
        return HFCounter(Path(arg), display or path_part)
    raise LlmplanError(f"tokenizer {path_part!r} must be trained first (see llmplan.corpus.train_bpe)")


def train_bpe(texts, vocab_size: int, out: Path) -> Path:
    """Train a byte-level BPE on `texts` (HF tokenizers) and save it as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.save(str(out))
    return out
