"""Train, decode and evaluate a streaming transducer on a speech manifest: the API the
speech papers build on.

    bundle = train(manifest, cfg, resume=rt.resume)        # dict: weights + everything to decode
    table = decode(bundle, manifest, split="test")          # one row per utterance
    scores = evaluate(table)                                # {domain: {metric: value}}

`cfg` sections (every key optional, defaults in DEFAULTS):
- tokens: kind (char | bpe | unigram), vocab_size, eos (append </s> for joint endpointing),
  eos_delay (s after the last word where </s> ends, for Ar-RNNT)
- model: TransducerConfig fields, the Emformer's at top level (d_model, layers, segment, ...),
  domain_vector (bool: feed the domain indicator)
- train: epochs, batch_size, lr, weight_decay, loss (rnnt | ar_rnnt), buffers
  ({domain: [b_l, b_r]} in encoder frames), segments ({domain: segment}, per-domain segment
  size), specaugment (bool), domains (which domains to train on), seed, warmup (steps),
  ctc_weight (auxiliary CTC loss on the encoder; 0 = none), ctc_epochs (first epochs train
  the encoder with CTC alone, so the transducer starts from acoustic features)
- decode: vad_threshold (s), vad_delta_db, max_symbols
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from reprise.errors import CheckpointError, ConfigError
from reprise.speech import corpus as corpus_mod
from reprise.speech import features as F
from reprise.speech.emformer import EmformerConfig
from reprise.speech.loss import ar_cells, lattice_loss
from reprise.speech.tokens import CHARS, EOS, Tokenizer, token_end_times, words_with_times
from reprise.speech.transducer import Transducer, TransducerConfig

log = logging.getLogger("reprise")

DEFAULTS = {
    "tokens": {"kind": "char", "vocab_size": 64, "eos": True, "eos_delay": 0.0},
    "model": {
        "d_model": 96,
        "n_heads": 4,
        "ffn": 256,
        "layers": 2,
        "segment": 4,
        "left": 16,
        "right": 1,
        "memory": 4,
        "dropout": 0.1,
        "reduction": 4,
        "pred_dim": 96,
        "pred_layers": 1,
        "join_dim": 128,
        "domain_vector": False,
    },
    "train": {
        "epochs": 10,
        "batch_size": 16,
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "loss": "rnnt",
        "buffers": {},
        "segments": {},
        "specaugment": True,
        "domains": list(corpus_mod.DOMAINS),
        "seed": 0,
        "warmup": 50,
        "ctc_weight": 0.5,
        "ctc_epochs": 0,
    },
    "decode": {"vad_threshold": 0.5, "vad_delta_db": 15.0, "max_symbols": 5},
}


def merge(cfg: dict | None) -> dict:
    """DEFAULTS updated by `cfg`, section by section; unknown keys are an error."""
    out = copy.deepcopy(DEFAULTS)
    for sec, vals in (cfg or {}).items():
        if sec not in out or not isinstance(vals, dict):
            raise ConfigError(f"speech config: unknown section {sec!r}; expected {list(out)}")
        for k, v in vals.items():
            if k not in out[sec]:
                raise ConfigError(
                    f"speech config: unknown key {sec}.{k}; expected {list(out[sec])}"
                )
            out[sec][k] = v
    if out["train"]["loss"] not in ("rnnt", "ar_rnnt"):
        raise ConfigError(f"train.loss: expected rnnt or ar_rnnt, got {out['train']['loss']!r}")
    return out


@dataclass
class Example:
    id: str
    domain: str
    text: str
    feats: torch.Tensor  # (T, 80), normalised
    tokens: torch.Tensor  # (U,) long
    ends: torch.Tensor  # (U,) end frame of each token (encoder frames)
    words: list
    starts: list
    word_ends: list
    duration: float
    energy: np.ndarray | None  # per-10-ms-frame energy, dB (VAD endpointer; None: not read)
    audio_path: str = ""


def model_config(cfg: dict, vocab: int) -> TransducerConfig:
    m = dict(cfg["model"])
    enc = EmformerConfig(**{k: m.pop(k) for k in list(m) if k in EmformerConfig.__annotations__})
    domains = len(corpus_mod.DOMAINS) if m.pop("domain_vector") else 0
    return TransducerConfig(vocab=vocab, domains=domains, encoder=enc, **m)


def examples(
    df, tok: Tokenizer, cmvn: F.CMVN | None, cfg: dict, raw: dict | None = None, energy=True
):
    """Features and targets of every manifest row (raw fbanks cached in `raw` by id); the
    audio's frame energy too (the VAD endpointer's input) unless `energy` is False, which
    spares training reading the audio when the corpus stored its fbanks."""
    shift = 0.01 * cfg["model"]["reduction"]
    out = []
    for row in df.itertuples():
        audio = corpus_mod.read_audio(row.audio_path) if energy else None
        fb = raw.get(row.id) if raw is not None else None
        if fb is None:
            fb = F.fbank_of(row.audio_path, audio)
            if raw is not None:
                raw[row.id] = fb
        ids = tok.encode(row.text)
        times = token_end_times(tok, list(row.words), list(row.starts), list(row.ends))
        if len(ids) != len(times):
            raise ConfigError(f"{row.id}: {len(ids)} tokens but {len(times)} token times")
        if cfg["tokens"]["eos"]:
            ids.append(EOS)
            times.append(float(row.ends[-1]) + cfg["tokens"]["eos_delay"])
        n_enc = math.ceil(len(fb) / cfg["model"]["reduction"])
        ends = [min(int(t / shift), n_enc - 1) for t in times]
        out.append(
            Example(
                id=row.id,
                domain=row.domain,
                text=row.text,
                feats=torch.from_numpy(cmvn(fb) if cmvn is not None else fb),
                tokens=torch.tensor(ids, dtype=torch.long),
                ends=torch.tensor(ends, dtype=torch.long),
                words=list(row.words),
                starts=[float(x) for x in row.starts],
                word_ends=[float(x) for x in row.ends],
                duration=float(row.duration),
                energy=F.frame_energy_db(audio) if energy else None,
                audio_path=row.audio_path,
            )
        )
    return out


def _batches(exs: list[Example], size: int, gen: torch.Generator) -> list[list[int]]:
    """Length-sorted buckets of one domain each (a batch shares a segment size and buffers),
    in a random order."""
    batches = []
    for dom in sorted({e.domain for e in exs}):
        idx = [i for i, e in enumerate(exs) if e.domain == dom]
        perm = torch.randperm(len(idx), generator=gen).tolist()
        idx = sorted((idx[p] for p in perm), key=lambda i: exs[i].feats.shape[0])
        batches += [idx[i : i + size] for i in range(0, len(idx), size)]
    order = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[i] for i in order]


def _collate(batch: list[Example], specaug: bool, gen: torch.Generator):
    feats = [F.spec_augment(e.feats, gen) if specaug else e.feats for e in batch]
    t = torch.tensor([f.shape[0] for f in feats])
    u = torch.tensor([len(e.tokens) for e in batch])
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    y = torch.nn.utils.rnn.pad_sequence([e.tokens for e in batch], batch_first=True)
    ends = torch.nn.utils.rnn.pad_sequence([e.ends for e in batch], batch_first=True)
    dom = torch.tensor([corpus_mod.DOMAINS.index(e.domain) for e in batch])
    return x, t, y, u, ends, dom


def batch_loss(
    model,
    batch: list[Example],
    cfg: dict,
    gen: torch.Generator | None = None,
    ctc_only: bool = False,
):
    """Mean transducer loss of one single-domain batch (Ar-RNNT with the domain's buffers),
    plus the weighted auxiliary CTC loss; only the CTC loss when `ctc_only`."""
    tr = cfg["train"]
    dom = batch[0].domain
    dev = next(model.parameters()).device
    collated = _collate(batch, tr["specaugment"] and gen is not None, gen)
    x, t, y, u, ends, d = (z.to(dev) for z in collated)
    seg = tr["segments"].get(dom)
    enc, t_enc = model.encode(x, t, d if model.c.domains else None, seg)
    if ctc_only or tr["ctc_weight"]:
        lp = torch.log_softmax(model.ctc(enc), -1).transpose(0, 1)
        ctc = torch.nn.functional.ctc_loss(lp, y, t_enc, u, zero_infinity=True, reduction="sum")
        ctc = ctc / len(batch)
        if ctc_only:
            return ctc
    buffers, cells = None, None
    if tr["loss"] == "ar_rnnt":
        b = tr["buffers"].get(dom)
        if b is None:
            raise ConfigError(f"train.buffers: Ar-RNNT needs [b_l, b_r] for domain {dom!r}")
        buffers = (float(b[0]), float(b[1]))
        cells = ar_cells(ends, u, enc.shape[1], *buffers)
    blank_lp, emit_lp = model.joiner.lattice(enc, model.predictor(y), y, t_enc, u, cells=cells)
    loss = lattice_loss(blank_lp, emit_lp, t_enc, u, ends=ends, buffers=buffers)
    return loss + tr["ctc_weight"] * ctc if tr["ctc_weight"] else loss


def train(
    manifest,
    cfg: dict | None = None,
    resume=None,
    time_limit: float | None = None,
    device="cpu",
    until: int | None = None,
) -> dict:
    """Train on the manifest's train split (on `device`); returns a bundle (see `load`), its
    weights on the CPU. `resume` is an rt.resume-like object (load()/save()); state is saved
    after every epoch. `until` stops after that epoch, the schedule still the whole
    training's (a warm-up: its saved state is where the rest of the training starts)."""
    from reprise.training.state import rng_state, set_rng_state

    cfg = merge(cfg)
    tr = cfg["train"]
    df = corpus_mod.load_manifest(manifest) if not hasattr(manifest, "columns") else manifest
    df = df[(df["split"] == "train") & df["domain"].isin(tr["domains"])]
    if df.empty:
        raise ConfigError(f"no train utterances for domains {tr['domains']} in the manifest")
    torch.manual_seed(tr["seed"])
    tok = Tokenizer.train(df["text"].tolist(), cfg["tokens"]["kind"], cfg["tokens"]["vocab_size"])
    raw: dict = {}
    exs = examples(df, tok, None, cfg, raw, energy=False)
    cmvn = F.CMVN.fit([raw[e.id] for e in exs])
    for e in exs:
        e.feats = torch.from_numpy(cmvn(raw[e.id]))
    mcfg = model_config(cfg, tok.size)
    model = Transducer(mcfg).to(device)
    # fused: one kernel per parameter instead of a dozen small ops (4% of a smoke epoch)
    opt = torch.optim.AdamW(
        model.parameters(), lr=tr["lr"], weight_decay=tr["weight_decay"], fused=True
    )
    steps_per_epoch = len(_batches(exs, tr["batch_size"], torch.Generator().manual_seed(0)))
    total = max(1, tr["epochs"] * steps_per_epoch)
    warm = min(tr["warmup"], total // 4)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, cosine decay
        opt, lambda s: min((s + 1) / max(warm, 1), 0.5 * (1 + math.cos(math.pi * s / total)))
    )
    gen = torch.Generator().manual_seed(tr["seed"])
    history, start = [], 0
    state = resume.load() if resume is not None else None
    if state is not None:
        model.load_state_dict(state["model"])  # onto the model's device
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        set_rng_state(state["rng"])
        history, start = state["history"], state["epoch"]
        log.info("resumed from %s after epoch %d", getattr(resume, "path", "state"), start)
    t0 = time.perf_counter()
    for epoch in range(start, tr["epochs"] if until is None else min(until, tr["epochs"])):
        model.train()
        losses = []
        for batch in _batches(exs, tr["batch_size"], gen):
            ctc_only = epoch < tr["ctc_epochs"]
            loss = batch_loss(model, [exs[i] for i in batch], cfg, gen, ctc_only)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(np.mean(losses)),
                "seconds": time.perf_counter() - t0,
            }
        )
        log.info(
            "epoch %d/%d: loss %.3f (%.1f s)",
            epoch + 1,
            tr["epochs"],
            history[-1]["loss"],
            history[-1]["seconds"],
        )
        if resume is not None:
            resume.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "gen": gen.get_state(),
                    "rng": rng_state(),
                    "history": history,
                    "epoch": epoch + 1,
                }
            )
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            log.info("stopping after epoch %d: time limit %.0f s reached", epoch + 1, time_limit)
            break
    return {
        "model": {k: v.cpu() for k, v in model.state_dict().items()},
        "config": cfg,
        "model_config": mcfg.to_dict(),
        "tokenizer": tok.state(),
        "cmvn": cmvn.state(),
        "history": history,
    }


@dataclass
class Loaded:
    model: Transducer
    tok: Tokenizer
    cmvn: F.CMVN
    cfg: dict


BUNDLE_KEYS = ("model", "config", "model_config", "tokenizer", "cmvn")


def load_file(path) -> Loaded:
    """`load` of the bundle saved at `path` (untrusted: weights-only, and checked to be a
    speech model, not some other checkpoint)."""
    from reprise.io import load_checkpoint

    bundle = load_checkpoint(path, what="speech model")
    missing = [k for k in BUNDLE_KEYS if k not in bundle]
    if missing:
        raise CheckpointError(
            f"speech model {path} is not a speech transducer bundle (no {', '.join(missing)}); "
            "expected the checkpoint `python -m reprise.speech train` writes"
        )
    try:
        return load(bundle)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"speech model {path} does not fit its recorded config: {first}"
        ) from None


def load(bundle: dict) -> Loaded:
    """The model (eval mode), tokenizer, CMVN and config of a `train` bundle."""
    model = Transducer(TransducerConfig.from_dict(bundle["model_config"]))
    model.load_state_dict(bundle["model"])
    model.eval()
    return Loaded(
        model,
        Tokenizer.from_state(bundle["tokenizer"]),
        F.CMVN.from_state(bundle["cmvn"]),
        merge(bundle["config"]),
    )


def decode(
    bundle,
    manifest,
    split: str = "test",
    domains=None,
    segments: dict | None = None,
    vad_threshold: float | None = None,
    threads: int = 1,
    vad_endpointers: dict[str, float] | None = None,
):
    """Stream every utterance of `split` through the model (greedy, single-threaded compute
    by default, for RTF); one row per utterance with hypotheses, token times, endpoints and
    the per-chunk timings. `segments` {domain: segment} overrides the model's segment size.
    Endpointers: "eos" (joint), "vad" (trailing silence `vad_threshold` s) and each entry
    {name: seconds} of `vad_endpointers`, all on the same decoding (endpoint_, hyp_, upl_
    columns per name)."""
    import pandas as pd

    from reprise.speech import metrics as M
    from reprise.speech.decode import (
        chunk_at,
        eos_endpoint,
        greedy_stream,
        truncate,
        vad_endpoint,
    )

    m = bundle if isinstance(bundle, Loaded) else load(bundle)
    dc = m.cfg["decode"]
    vad_th = dc["vad_threshold"] if vad_threshold is None else vad_threshold
    segments = segments if segments is not None else m.cfg["train"]["segments"]
    df = corpus_mod.load_manifest(manifest) if not hasattr(manifest, "columns") else manifest
    df = df[df["split"] == split]
    if domains is not None:
        df = df[df["domain"].isin(domains)]
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    try:
        for e in examples(df, m.tok, m.cmvn, m.cfg):
            dom = corpus_mod.DOMAINS.index(e.domain) if m.model.c.domains else None
            res = greedy_stream(m.model, e.feats, dom, segments.get(e.domain), dc["max_symbols"])
            ids = truncate(res, None)
            times = [t for k, t in zip(res.tokens, res.availability(), strict=True) if k != EOS]
            hyp_words, hyp_times = words_with_times(m.tok, ids, times)
            _, align_times = words_with_times(
                m.tok,
                ids,
                [t for k, t in zip(res.tokens, res.emission_times(), strict=True) if k != EOS],
            )
            ep = {
                "eos": eos_endpoint(res),
                "vad": vad_endpoint(e.energy, vad_th, dc["vad_delta_db"]),
            }
            for name, th in (vad_endpointers or {}).items():
                ep[name] = vad_endpoint(e.energy, th, dc["vad_delta_db"])
            row = dict(
                id=e.id,
                domain=e.domain,
                ref=e.text,
                hyp=" ".join(hyp_words),
                duration=e.duration,
                speech_start=e.starts[0],
                speech_end=e.word_ends[-1],
                ref_ends=e.word_ends,
                hyp_words=hyp_words,
                hyp_times=hyp_times,
                align_times=align_times,
                compute=float(sum(res.chunk_compute)),
                chunk_audio_end=res.chunk_audio_end,
                chunk_compute=res.chunk_compute,
                first_token=times[0] if times else None,
            )
            for name, t_end in ep.items():
                final = len(res.chunk_audio_end) - 1 if t_end is None else chunk_at(res, t_end)
                words, _ = words_with_times(
                    m.tok, truncate(res, final), [0.0] * len(truncate(res, final))
                )
                row[f"endpoint_{name}"] = t_end
                row[f"hyp_{name}"] = " ".join(words)
                row[f"upl_{name}"] = M.upl(
                    res.chunk_audio_end, res.chunk_compute, final, e.word_ends[-1]
                )
            rows.append(row)
    finally:
        torch.set_num_threads(old_threads)
    return pd.DataFrame(rows)


def evaluate(table, flops_per_second: float | None = None) -> dict:
    """Per-domain (and "all") metrics of a `decode` table."""
    from reprise.speech import metrics as M

    out = {}
    groups = [("all", table)] + [(d, g) for d, g in table.groupby("domain")]
    for name, g in groups:
        delays, align = [], []
        for r in g.itertuples():
            ref = r.ref.split()
            delays += M.emission_delays(ref, r.ref_ends, list(r.hyp_words), list(r.hyp_times))
            align += M.emission_delays(ref, r.ref_ends, list(r.hyp_words), list(r.align_times))
        s = {
            "n": len(g),
            "wer": M.wer(g["ref"].tolist(), g["hyp"].tolist()),
            "rtf": M.rtf(g["compute"].sum(), g["duration"].sum()),
        }
        for k, v in M.summarize(delays).items():
            s[f"emission_delay_{k}"] = v
        for k, v in M.summarize(align).items():
            s[f"alignment_delay_{k}"] = v
        ftl = [
            f - st
            for f, st in zip(g["first_token"], g["speech_start"], strict=True)
            if f is not None and not (isinstance(f, float) and math.isnan(f))
        ]
        s["first_token_latency_mean"] = M.summarize(ftl)["mean"]
        for ep in ("eos", "vad"):
            ends = [
                None if (x is None or (isinstance(x, float) and math.isnan(x))) else x
                for x in g[f"endpoint_{ep}"]
            ]
            lat = [M.endpoint_latency(x, se) for x, se in zip(ends, g["speech_end"], strict=True)]
            lat = [x for x in lat if x is not None]
            s[f"endpoint_{ep}_latency_mean"] = M.summarize(lat)["mean"]
            s[f"endpoint_{ep}_missed_rate"] = float(np.mean([x is None for x in ends]))
            s[f"endpoint_{ep}_early_cutoff_rate"] = M.early_cutoff_rate(
                ends, g["speech_end"].tolist()
            )
            s[f"wer_{ep}"] = M.wer(g["ref"].tolist(), g[f"hyp_{ep}"].tolist())
            for k, v in M.summarize(g[f"upl_{ep}"].tolist()).items():
                s[f"upl_{ep}_{k}"] = v
        if flops_per_second is not None:
            s["flops_per_second"] = flops_per_second
        out[name] = s
    return out


@torch.no_grad()
def force_align(bundle, manifest):
    """Word times by the model itself (Viterbi alignment of the transcript) for every
    utterance whose manifest row has none (`aligned` False or empty `ends`): a word starts at
    its first token's frame and ends after its last token's. Returns a new manifest with
    `aligned` True and `alignment` "model" for those rows."""
    from reprise.speech.loss import lattice, viterbi_alignment

    m = bundle if isinstance(bundle, Loaded) else load(bundle)
    df = corpus_mod.load_manifest(manifest) if not hasattr(manifest, "columns") else manifest
    df = df.copy()
    if "alignment" not in df.columns:
        df["alignment"] = ["given" if len(e) else "" for e in df["ends"]]
    shift = m.model.frame_shift
    for i, row in df.iterrows():
        if len(row["ends"]):
            continue
        fb = m.cmvn(F.fbank_of(row["audio_path"]))
        x = torch.from_numpy(fb)[None]
        pieces = [m.tok.encode(w) for w in row["words"]]
        if m.tok.sp is None:  # characters: a space token between words
            pieces = [
                p + ([2 + CHARS.index(" ")] if k < len(pieces) - 1 else [])
                for k, p in enumerate(pieces)
            ]
        y = torch.tensor([[k for p in pieces for k in p]])
        dom = torch.tensor([corpus_mod.DOMAINS.index(row["domain"])]) if m.model.c.domains else None
        logits, _ = m.model(x, torch.tensor([x.shape[1]]), y, dom)
        frames, _ = viterbi_alignment(*(z[0] for z in lattice(logits, y)))
        starts, ends, k = [], [], 0
        for p in pieces:
            own = len(p) - (1 if m.tok.sp is None and k + len(p) < len(frames) else 0)
            starts.append(frames[k] * shift)
            ends.append((frames[k + own - 1] + 1) * shift)
            k += len(p)
        df.at[i, "starts"], df.at[i, "ends"] = starts, ends
        df.at[i, "speech_end"] = ends[-1]
        df.at[i, "alignment"] = "model"
    df["aligned"] = True
    return df
