"""Config models: the single home of every default, and their loading with one-line errors."""

from mmload.config.loader import load_model, validate_model

__all__ = ["load_model", "validate_model"]
