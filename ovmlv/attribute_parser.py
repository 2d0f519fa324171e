"""Turn an LLM's free-text answer into a short list of visual attribute phrases (DESIGN 2.3).

The LLM is asked for short visual attributes of a label. What comes back varies: numbered or
bulleted lists, JSON (sometimes fenced), one comma-separated line, all wrapped in polite
chatter. `parse_attributes` extracts the phrases and never raises: a bad answer yields `[]`,
and the caller then falls back to the plain label.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

__all__ = ["parse_attributes"]

# Longer answers are chatter or runaway generation; bounding the input bounds the work.
_MAX_INPUT_CHARS = 20_000
_MAX_JSON_DEPTH = 4

_FENCE = re.compile(r"```[^\n`]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_BULLET = re.compile(r"^[-*+•–—·▪◦‣●○■□➤→>]\s+")
_NUMBERED = re.compile(r"^(?:\(\s*\d{1,3}\s*\)|\d{1,3}\s*[.)．）:、](?!\d)|[a-zA-Z][)）])\s*")
_QUOTED = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")
_SEPARATORS = re.compile(r"\s*[,;，；、]\s*")
_CHATTER = re.compile(
    r"^(?:sure|certainly|of course|absolutely|okay|ok\b|great|alright|here\s*(?:are|is|'s)|"
    r"below|the following|following are|i hope|hope this|i'm|i am|i can|i'd|i would|"
    r"let me|feel free|happy to|glad to|as an ai|note\b|please|these (?:attributes|are|features)|"
    r"this (?:list|should)|visual attributes|attributes of|in summary|overall)",
    re.IGNORECASE,
)
# Words a cut phrase should not end on ("black fur and" -> "black fur").
_DANGLING = {"a", "an", "the", "and", "or", "of", "with", "to", "in", "on", "at", "by", "for"}
_DANGLING |= {"which", "that", "while", "its", "their", "is", "are", "as", "from"}
# Clause words a long phrase may be cut before.
_CLAUSE_STARTS = {"and", "or", "with", "which", "that", "while", "where", "when", "as"}
_EDGE_QUOTES = "\"'“”‘’«»「」『』`"
_TRAILING = ".,;:!。，；：！、…"
_LEADING = ",;:!.。，；：、…-–—"
_ARTICLES = re.compile(r"^(?:a|an|the)\s+|^a video of\s+", re.IGNORECASE)


def parse_attributes(text: str, label: str, max_phrases: int = 5, max_words: int = 12) -> list[str]:
    """Extract up to `max_phrases` short attribute phrases from an LLM answer.

    Args:
        text: The LLM's raw output.
        label: The label the attributes describe; a phrase equal to it is dropped.
        max_phrases: Maximum number of phrases returned.
        max_words: Maximum number of whitespace-separated words per phrase; longer phrases are cut
            at a natural boundary (or dropped when they are prose).

    Returns:
        Distinct (case-insensitively) phrases in the order given, each on one line, without list
        markers, markdown or trailing full stop. Empty when nothing usable was found.
    """
    try:
        return _parse(text, label, max_phrases, max_words)
    except Exception:  # noqa: BLE001 - a parser for untrusted text must never take the caller down
        return []


def _parse(text: str, label: str, max_phrases: int, max_words: int) -> list[str]:
    if not isinstance(text, str) or max_phrases <= 0:
        return []
    max_words = max(1, int(max_words))
    text = text[:_MAX_INPUT_CHARS].replace("\r\n", "\n")
    candidates = _from_json(text)
    if candidates is None:
        candidates = _from_lines(text, max_words)
    label_key = _key(label) if isinstance(label, str) else ""
    phrases: list[str] = []
    seen: set[str] = set()
    for raw, is_item in candidates:
        phrase = _shorten(_clean(raw), max_words, is_item)
        key = _key(phrase) if phrase else ""
        if not key or key == label_key or key in seen:
            continue
        seen.add(key)
        phrases.append(phrase)
        if len(phrases) >= max_phrases:
            break
    return phrases


def _from_json(text: str) -> list[tuple[str, bool]] | None:
    """Return the strings of a JSON array/object in `text`, or None if there is none."""
    blocks = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for block in blocks:
        stripped = block.strip()
        spans = [stripped]
        for open_char, close_char in (("[", "]"), ("{", "}")):
            start, end = stripped.find(open_char), stripped.rfind(close_char)
            if start != -1 and end > start:
                spans.append(stripped[start : end + 1])
        for span in spans:
            try:
                value = json.loads(span)
            except (ValueError, RecursionError):
                continue
            strings = _json_strings(value, 0)
            if strings:
                return [(s, True) for s in strings]
        # A truncated array (generation cut off): keep the complete quoted strings.
        start = stripped.find("[")
        if start != -1 and stripped.lstrip().startswith(("[", "{")):
            quoted = [_unescape(m.group(1)) for m in _QUOTED.finditer(stripped[start:])]
            if quoted:
                return [(s, True) for s in quoted]
    return None


def _json_strings(value: Any, depth: int) -> list[str]:
    """Strings from a list (of strings or small objects) or from an object's first useful value."""
    if depth > _MAX_JSON_DEPTH:
        return []
    if isinstance(value, list):
        strings = []
        for item in value:
            if isinstance(item, str):
                strings.append(item)
            elif isinstance(item, dict):
                strings.extend(s for s in item.values() if isinstance(s, str))
        return strings
    if isinstance(value, dict):
        for item in value.values():
            if isinstance(item, (list, dict)):
                strings = _json_strings(item, depth + 1)
                if strings:
                    return strings
        return [s for s in value.values() if isinstance(s, str)]
    return []


def _unescape(fragment: str) -> str:
    try:
        return json.loads(f'"{fragment}"')
    except ValueError:
        return fragment


def _from_lines(text: str, max_words: int) -> list[tuple[str, bool]]:
    """Candidates from list items if there are any, otherwise from the non-chatter prose."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("```")]
    items = [_strip_marker(line) for line in lines if _has_marker(line)]
    if items:
        return [(item, True) for item in items]
    segments: list[str] = []
    for line in lines:
        if line.startswith("#"):
            continue
        sentences = [s for s in (_after_intro(s) for s in _SENTENCE_END.split(line)) if s]
        sentences = [s for s in sentences if not _is_chatter(s)]
        if len(sentences) >= 2 and sum(len(s.split()) for s in sentences) > 2 * max_words:
            continue  # a paragraph of prose, not a list of attributes
        segments.extend(sentences)
    if len(segments) == 1:
        # One sentence: most likely "a, b, c" (after an intro) rather than one attribute.
        return [(part, False) for part in _SEPARATORS.split(segments[0])]
    return [(segment, False) for segment in segments]


def _has_marker(line: str) -> bool:
    return bool(_BULLET.match(line) or _NUMBERED.match(line))


def _strip_marker(line: str) -> str:
    for _ in range(3):  # nested markers: "- 1. foo"
        stripped = _NUMBERED.sub("", _BULLET.sub("", line, count=1), count=1).strip()
        if stripped == line:
            break
        line = stripped
    return line


def _after_intro(sentence: str) -> str:
    """Drop an intro before a colon ("Here are the attributes: a, b"), keep "Color: red"."""
    sentence = sentence.strip()
    head, sep, tail = sentence.partition(":")
    if sep and tail.strip() and (_is_chatter(head) or len(head.split()) > 3):
        return tail.strip()
    return sentence


def _is_chatter(segment: str) -> bool:
    plain = segment.strip().strip("*_#").strip()
    return not plain or plain.endswith(":") or bool(_CHATTER.match(plain))


def _clean(raw: str) -> str:
    """One line, no markdown emphasis, no marker, no edge quotes or trailing punctuation."""
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in str(raw))  # control chars
    phrase = " ".join(text.replace("\ufffd", " ").split())  # and undecodable bytes never reach the UI
    phrase = phrase.replace("**", "").replace("__", "").replace("`", "").replace("*", "")
    phrase = _strip_marker(phrase.lstrip("#").strip())
    previous = None
    while phrase != previous:
        previous = phrase
        phrase = phrase.strip().strip(_EDGE_QUOTES).rstrip(_TRAILING).lstrip(_LEADING)
    phrase = re.sub(r"^(?:and|or)\s+", "", phrase, flags=re.IGNORECASE).strip()
    if not any(ch.isalnum() for ch in phrase):
        return ""
    return phrase


def _shorten(phrase: str, max_words: int, is_item: bool) -> str:
    """Cut a long phrase to `max_words` at a natural boundary; drop prose paragraphs ("" )."""
    if not phrase:
        return ""
    words = phrase.split()
    if len(words) <= max_words and len(phrase) <= 8 * max_words:
        return phrase
    sentences = [s for s in _SENTENCE_END.split(phrase) if s.strip()]
    if not is_item and (len(sentences) >= 3 or len(words) > 2 * max_words):
        return ""  # a paragraph of prose, not an attribute
    first = _clean(sentences[0]) if sentences else ""
    if first and len(first.split()) <= max_words and len(first) <= 8 * max_words:
        return first
    return _cut(first or phrase, max_words)


def _cut(phrase: str, max_words: int) -> str:
    words = phrase.split()
    if len(words) <= 1:  # unspaced scripts: cut by characters, at punctuation if there is some
        limit = 8 * max_words
        head = phrase[:limit]
        boundary = max(head.rfind(ch) for ch in "，、；,;")
        return _clean(head[:boundary] if boundary > limit // 3 else head)
    best = 0
    for index in range(1, min(len(words), max_words + 1)):
        if words[index - 1][-1] in ",;:)—–" or words[index].lower() in _CLAUSE_STARTS:
            best = index
    if best < max(1, max_words // 3):
        best = max_words
    kept = words[:best]
    while len(kept) > 1 and kept[-1].lower().strip(_TRAILING) in _DANGLING:
        kept.pop()
    while kept and len(" ".join(kept)) > 8 * max_words:
        kept.pop()
    return _clean(" ".join(kept) if kept else words[0][: 8 * max_words])


def _key(phrase: str) -> str:
    """Comparison key: NFKC, case-folded, no article, no punctuation, single spaces."""
    key = unicodedata.normalize("NFKC", phrase).casefold()
    key = _ARTICLES.sub("", " ".join(key.split()))
    key = "".join(ch if ch.isalnum() else " " for ch in key)
    return " ".join(key.split())
