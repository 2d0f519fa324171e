"""Built-in label vocabularies: public class lists shipped as text files in ovmlv/vocabularies.

Each file holds one label per line. Lines starting with ``#`` are comments; the first one is
the vocabulary's title (e.g. ``# Kinetics-400 actions (400)``). The app's "Discover" step
scores a whole vocabulary against an encoded video and suggests its best labels.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from .errors import ConfigError
from .labels import LabelLimits, parse_labels

__all__ = ["list_vocabularies", "load_vocabulary", "vocabulary_title"]

_FOLDER = "vocabularies"
_MAX_LABELS = 10_000  # a sanity bound on a shipped file, not a user limit


def _files() -> dict[str, resources.abc.Traversable]:
    folder = resources.files(__package__).joinpath(_FOLDER)
    return {
        entry.name.removesuffix(".txt"): entry for entry in folder.iterdir() if entry.name.endswith(".txt")
    }


def list_vocabularies() -> list[str]:
    """Names of the built-in vocabularies (file names without ``.txt``), sorted."""
    return sorted(_files())


@cache
def _read(name: str) -> tuple[str, tuple[str, ...]]:
    files = _files()
    if name not in files:
        raise ConfigError(f"unknown vocabulary {name!r}; known vocabularies: {', '.join(sorted(files))}")
    lines = files[name].read_text(encoding="utf-8").splitlines()
    comments = [line.lstrip("# ").strip() for line in lines if line.lstrip().startswith("#")]
    items = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    labels = parse_labels(items, LabelLimits(max_labels=_MAX_LABELS))
    return (comments[0] if comments else name), tuple(labels)


def load_vocabulary(name: str) -> list[str]:
    """The labels of vocabulary ``name``, canonical and in file order.

    Raises:
        ConfigError: ``name`` is not a built-in vocabulary.
    """
    return list(_read(name)[1])


def vocabulary_title(name: str) -> str:
    """A human-readable title, e.g. "Kinetics-400 actions (400)"."""
    return _read(name)[0]
