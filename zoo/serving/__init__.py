"""Serving the zoo's trained models: SavedModels in TF Serving's layout with named, checked
signatures and warmup records (`export.export`, `warmup`), and trained presets by name
(`presets`)."""

from zoo.serving.presets import from_preset, list_presets, load_model

__all__ = ["from_preset", "list_presets", "load_model"]
