"""ovmlv: open-vocabulary, multi-label video classification.

    import ovmlv
    clf = ovmlv.VideoClassifier.from_pretrained("siglip2-b16")
    result = clf.classify("clip.mp4", ["dribbling", "ball", "crowd cheering"])

Importing the package loads nothing heavy: models are built only when asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "list_presets": ("ovmlv.presets", "list_presets"),
    "create_model": ("ovmlv.factory", "create_model"),
    "OVMLVModel": ("ovmlv.model", "OVMLVModel"),
    "ModelConfig": ("ovmlv.config", "ModelConfig"),
    "save_checkpoint": ("ovmlv.checkpoint", "save_checkpoint"),
    "VideoClassifier": ("ovmlv.classifier", "VideoClassifier"),
    "VideoState": ("ovmlv.classifier", "VideoState"),
    "Result": ("ovmlv.result", "Result"),
    "Segment": ("ovmlv.result", "Segment"),
    "parse_labels": ("ovmlv.labels", "parse_labels"),
    "OvmlvError": ("ovmlv.errors", "OvmlvError"),
    "WeightsUnavailableError": ("ovmlv.errors", "WeightsUnavailableError"),
    "CheckpointError": ("ovmlv.errors", "CheckpointError"),
    "ConfigError": ("ovmlv.errors", "ConfigError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'ovmlv' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
