"""Streaming speech recognition core, shared by the speech papers (it knows none of them).

Data
    corpus        synthesised two-domain corpus (espeak-ng, exact word times), manifest I/O
    librispeech   LibriSpeech tarballs -> the same manifest format (paper scale)
    tts           espeak-ng through ctypes
    features      80-dim Kaldi fbank, global CMVN, SpecAugment
    tokens        characters or sentencepiece, + blank and </s>; token end times
Model (one file per part)
    emformer      Emformer encoder, full-utterance and streaming passes
    predictor     LSTM prediction network
    joiner        joint network
    transducer    time reduction + domain indicator + the three parts
Training and inference
    loss          RNN-T and alignment-restricted RNN-T (anti-diagonal forward and backward)
    decode        greedy streaming and beam search; </s> and VAD endpointers
    metrics       WER, RTF, emission delay, endpoint latency, first-token latency, UPL, FLOPs
    train         train / load / decode / evaluate: the API papers call
    zoo           checks of the papers' runs against the model zoo

This module imports nothing heavy; import the submodules you need.
"""
