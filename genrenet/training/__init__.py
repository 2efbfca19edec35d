"""Training: the settings (``TrainConfig``), the trainer, transfer learning, checkpoints and distribution."""
