"""Exceptions with one-line, user-facing messages."""

from __future__ import annotations


class OvmlvError(Exception):
    """Base class: the message is one clear line meant for the user."""


class ConfigError(OvmlvError, ValueError):
    """A configuration is malformed (unknown keys, wrong types, unknown preset)."""


class WeightsUnavailableError(OvmlvError, RuntimeError):
    """Model weights are neither cached nor downloadable."""


class CheckpointError(OvmlvError, RuntimeError):
    """A checkpoint directory is missing files or does not match the model."""
