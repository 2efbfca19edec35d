"""Inference: one windowing loop under evaluate, predict, embed and the frozen-backbone features; ensembles;
genre timelines (per-window probabilities under the spectrogram)."""
