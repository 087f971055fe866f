"""Text normalization, metrics, model builders, training loops and inference."""
