"""Label input handling shared by the CLI, the app and the Python API.

Labels are free text typed by a user at run time. This module turns that text into a clean,
bounded list of distinct labels, gives each label a canonical spelling used as a cache key,
and quotes a label so that it can be placed inside an LLM prompt as data, never as
instructions.

Rules applied by :func:`parse_labels`:

- a string is split on commas and line breaks (full-width commas count, through NFKC); a list
  of strings is taken item by item, each item being one whole label;
- every label is NFKC-normalised, control and invisible formatting characters are removed,
  runs of whitespace become one space, and the ends are trimmed (:func:`canonical_label`);
- empty labels are dropped; duplicates are found case-insensitively (``str.casefold``) and the
  first spelling is kept, in input order;
- non-Latin scripts and emoji are kept as they are;
- the number of labels and the length of each label are bounded (:class:`LabelLimits`).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ovmlv.errors import OvmlvError

__all__ = [
    "LabelError",
    "LabelLimits",
    "canonical_label",
    "parse_labels",
    "quote_label_for_prompt",
    "read_label_file",
]

NO_LABELS_MESSAGE = 'no labels given: type at least one label, e.g. "dog, running"'

# Invisible formatting characters that only make two identical-looking labels differ (zero
# width space, direction marks and overrides, word joiner, BOM, soft hyphen). The zero width
# (non-)joiners are kept on purpose: emoji sequences and several scripts need them.
_INVISIBLE = frozenset(
    [0x00AD, 0x200B, 0x200E, 0x200F, 0xFEFF]
    + list(range(0x202A, 0x202F))
    + list(range(0x2060, 0x2065))
    + list(range(0x2066, 0x206A))
)
# Characters that json.dumps(ensure_ascii=False) leaves raw but that a tokenizer or a terminal
# may treat as a line break or a control: DEL, C1 controls, line/paragraph separators.
_PROMPT_UNSAFE = re.compile("[\u007f-\u009f\u2028\u2029\ud800-\udfff]")
_SEPARATORS = re.compile(r"[,\n\r\u2028\u2029\x85]")
# A label file larger than this is almost certainly not a label file (e.g. a video passed by
# mistake); refusing it early avoids reading gigabytes into memory.
_MAX_FILE_BYTES = 8 * 1024 * 1024
_SHOWN_CHARS = 40


class LabelError(OvmlvError, ValueError):
    """A problem with user-supplied labels; the message is one clear line meant for the user."""


@dataclass(frozen=True)
class LabelLimits:
    """Bounds on user-supplied labels."""

    max_labels: int = 100  # more distinct labels than this is an error
    max_chars: int = 200  # a canonical label longer than this (in characters) is an error

    def __post_init__(self) -> None:
        if self.max_labels < 1 or self.max_chars < 1:
            raise ValueError(f"label limits must be positive, got {self}")


def _keep_char(char: str) -> bool:
    """Whether a character survives cleaning (whitespace is kept, to be collapsed later)."""
    if char.isspace():
        return True
    if ord(char) in _INVISIBLE:
        return False
    return unicodedata.category(char) not in ("Cc", "Cs")


def canonical_label(label: str) -> str:
    """The canonical spelling of one label, used as a cache key.

    NFKC normalisation, control and invisible formatting characters removed, whitespace runs
    collapsed to one space, ends trimmed. Case is kept: "Dog" and "dog" stay distinct keys.

    Args:
        label: One label as typed.

    Returns:
        The canonical label (possibly empty).
    """
    if not isinstance(label, str):
        raise TypeError(f"a label must be a str, got {type(label).__name__}")
    normalised = unicodedata.normalize("NFKC", label)
    cleaned = "".join(char for char in normalised if _keep_char(char))
    return " ".join(cleaned.split())


def _shorten(label: str) -> str:
    """The start of a long label, for an error message."""
    return label if len(label) <= _SHOWN_CHARS else label[:_SHOWN_CHARS] + "…"


def _split(text: str | Sequence[str]) -> list[str]:
    """Raw label items: a string split on separators, or the items of a sequence."""
    if isinstance(text, str):
        # NFKC first so that full-width commas (U+FF0C) separate labels as well.
        return _SEPARATORS.split(unicodedata.normalize("NFKC", text))
    if isinstance(text, (bytes, bytearray)) or not isinstance(text, Iterable):
        raise TypeError(f"labels must be a str or a sequence of str, got {type(text).__name__}")
    return list(text)


def parse_labels(text: str | Sequence[str], limits: LabelLimits = LabelLimits()) -> list[str]:
    """Parse user input into a clean list of distinct labels.

    Args:
        text: Comma- or newline-separated labels, or a sequence whose items are whole labels
            (a comma inside an item is part of that label).
        limits: Bounds on the number of labels and the length of each label.

    Returns:
        Canonical labels (see :func:`canonical_label`), de-duplicated case-insensitively with
        the first spelling kept, in input order.

    Raises:
        LabelError: No labels, too many labels, or a label that is too long.
        TypeError: ``text`` is neither a str nor a sequence of str.
    """
    labels: list[str] = []
    seen: set[str] = set()
    for item in _split(text):
        label = canonical_label(item)
        if not label:
            continue
        if len(label) > limits.max_chars:
            raise LabelError(
                f'label "{_shorten(label)}" is {len(label)} characters long; '
                f"the limit is {limits.max_chars} characters"
            )
        key = label.casefold()
        if key not in seen:
            seen.add(key)
            labels.append(label)
    if not labels:
        raise LabelError(NO_LABELS_MESSAGE)
    if len(labels) > limits.max_labels:
        raise LabelError(f"too many labels: {len(labels)} given, the limit is {limits.max_labels}")
    return labels


def _read_text(path: str | os.PathLike[str]) -> str:
    """The UTF-8 text of a label file, or a LabelError that says why it cannot be had."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise LabelError(f"cannot read label file {name}: {reason}") from None
    if len(data) > _MAX_FILE_BYTES:
        raise LabelError(
            f"label file {name} is larger than {_MAX_FILE_BYTES // (1024 * 1024)} MiB; "
            "is it really a text file of labels?"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LabelError(
            f"label file {name} is not UTF-8 text "
            f"(byte 0x{data[error.start]:02x} at offset {error.start}); save it as UTF-8"
        ) from None


def read_label_file(path: str | os.PathLike[str], limits: LabelLimits = LabelLimits()) -> list[str]:
    """Read labels from a UTF-8 text file.

    One label per line or comma separated (both may be mixed). Lines whose first non-blank
    character is ``#`` are comments. A UTF-8 byte order mark is ignored.

    Args:
        path: The file.
        limits: Bounds on the number of labels and the length of each label.

    Returns:
        The labels, as :func:`parse_labels` returns them.

    Raises:
        LabelError: The file cannot be read, is not UTF-8, holds no labels, or breaks a limit.
    """
    text = _read_text(path)
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    try:
        return parse_labels("\n".join(lines), limits)
    except LabelError as error:
        if str(error) == NO_LABELS_MESSAGE:
            raise LabelError(
                f"no labels in {os.fspath(path)}: write one label per line or separate them with commas"
            ) from None
        raise LabelError(f"{os.fspath(path)}: {error}") from None


def _escape_unsafe(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def quote_label_for_prompt(label: str) -> str:
    """Quote a label so that it is data inside an LLM prompt.

    The label becomes a JSON string literal (double quotes, ``json.dumps`` with
    ``ensure_ascii=False``): quotes, backslashes, newlines and every control character are
    escaped, so text such as ``ignore previous instructions\\nSay X`` stays on one line inside
    the quotes. ``json.loads`` of the result gives back the label exactly.

    Args:
        label: The label (normally already canonical).

    Returns:
        The quoted label, including the surrounding double quotes.
    """
    if not isinstance(label, str):
        raise TypeError(f"a label must be a str, got {type(label).__name__}")
    quoted = json.dumps(label, ensure_ascii=False)
    return _PROMPT_UNSAFE.sub(_escape_unsafe, quoted)
