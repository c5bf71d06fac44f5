"""Output units of the transducer: characters or a sentencepiece model trained on train text.

Id 0 is the blank, id 1 the end-of-sentence token `</s>` (for joint endpointing), units start
at 2. Each token also gets a ground-truth end time from the word times (`token_end_times`):
a word's duration is shared among its tokens in proportion to their characters; a space
ends with the word before it and `</s>` with the last word.
"""

from __future__ import annotations

import io

from reprise.errors import ConfigError

BLANK, EOS = 0, 1
CHARS = " abcdefghijklmnopqrstuvwxyz'"


class Tokenizer:
    """kind "char" (no training) or "bpe"/"unigram" (sentencepiece, `vocab_size` pieces)."""

    def __init__(self, kind: str = "char", model: bytes | None = None):
        if kind not in ("char", "bpe", "unigram"):
            raise ConfigError(f"tokens: expected kind char, bpe or unigram, got {kind!r}")
        self.kind, self.model = kind, model
        self.sp = None
        if kind != "char":
            import sentencepiece as spm

            if model is None:
                raise ConfigError(
                    "a sentencepiece tokenizer needs a trained model (Tokenizer.train)"
                )
            self.sp = spm.SentencePieceProcessor(model_proto=model)

    @classmethod
    def train(cls, texts: list[str], kind: str = "char", vocab_size: int = 64) -> Tokenizer:
        if kind == "char":
            return cls("char")
        import sentencepiece as spm

        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=buf,
            vocab_size=vocab_size,
            model_type=kind,
            character_coverage=1.0,
            unk_id=0,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            hard_vocab_limit=False,
            minloglevel=2,
            num_threads=1,
        )
        return cls(kind, buf.getvalue())

    @property
    def size(self) -> int:
        """Number of output classes including blank and </s>."""
        return 2 + (len(CHARS) if self.sp is None else self.sp.get_piece_size())

    def pieces(self, text: str) -> list[str]:
        if self.sp is None:
            return [c for c in text if c in CHARS]
        return self.sp.encode(text, out_type=str)

    def encode(self, text: str) -> list[int]:
        if self.sp is None:
            return [2 + CHARS.index(c) for c in text if c in CHARS]
        return [2 + i for i in self.sp.encode(text)]

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids if int(i) >= 2]
        if self.sp is None:
            return "".join(CHARS[i - 2] for i in ids).strip()
        return self.sp.decode([i - 2 for i in ids]).strip()

    def state(self) -> dict:
        return {"kind": self.kind, "model": self.model}

    @classmethod
    def from_state(cls, s: dict) -> Tokenizer:
        return cls(s["kind"], s["model"])


def token_end_times(tok: Tokenizer, words: list[str], starts, ends) -> list[float]:
    """End time (s) of each token of " ".join(words) under `tok` (see module docstring)."""
    times: list[float] = []
    if tok.sp is None:
        for i, (w, s, e) in enumerate(zip(words, starts, ends, strict=True)):
            if i:
                times.append(float(ends[i - 1]))  # the space
            n = len([c for c in w if c in CHARS])
            times += [s + (e - s) * (k + 1) / n for k in range(n)]
        return times
    for w, s, e in zip(words, starts, ends, strict=True):
        ps = tok.sp.encode(w, out_type=str)
        lens = [len(p.lstrip("\u2581")) for p in ps]
        total, acc = max(sum(lens), 1), 0
        for n in lens:
            acc += n
            times.append(s + (e - s) * acc / total)
    return times


def words_with_times(
    tok: Tokenizer, ids: list[int], times: list[float]
) -> tuple[list[str], list[float]]:
    """Group emitted token ids into words; each word's time is that of its last token."""
    words: list[str] = []
    out_t: list[float] = []
    cur: list[int] = []
    last = 0.0

    def flush():
        text = tok.decode(cur)
        if text:
            words.append(text)
            out_t.append(last)

    for k, t in zip(ids, times, strict=True):
        if k < 2:
            continue
        starts_word = (tok.sp is None and k == 2 + CHARS.index(" ")) or (
            tok.sp is not None and tok.sp.id_to_piece(k - 2).startswith("\u2581")
        )
        if starts_word and cur:
            flush()
            cur = []
        if tok.sp is None and k == 2 + CHARS.index(" "):
            continue
        cur.append(k)
        last = t
    if cur:
        flush()
    return words, out_t
