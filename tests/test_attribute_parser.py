"""Tests for ovmlv.attribute_parser: every LLM output format we have seen, plus a fuzz test."""

from __future__ import annotations

import random

import pytest

from ovmlv.attribute_parser import parse_attributes

CASES = [
    pytest.param(
        "1. Orange fur\n2. Black stripes\n3. Long tail",
        "tiger",
        ["Orange fur", "Black stripes", "Long tail"],
        id="numbered-dot",
    ),
    pytest.param(
        "1) orange fur\n2) black stripes", "tiger", ["orange fur", "black stripes"], id="numbered-paren"
    ),
    pytest.param(
        "(1) orange fur\n(2) black stripes",
        "tiger",
        ["orange fur", "black stripes"],
        id="numbered-parenthesised",
    ),
    pytest.param(
        "- orange fur\n* black stripes\n• long tail\n– sharp claws",
        "tiger",
        ["orange fur", "black stripes", "long tail", "sharp claws"],
        id="bullets-mixed",
    ),
    pytest.param(
        '["orange fur", "black stripes", "long tail"]',
        "tiger",
        ["orange fur", "black stripes", "long tail"],
        id="json-array",
    ),
    pytest.param(
        'Here you go:\n```json\n["round shape", "red skin"]\n```\nEnjoy!',
        "tomato",
        ["round shape", "red skin"],
        id="json-fenced",
    ),
    pytest.param(
        '{"label": "tiger", "attributes": ["orange fur", "black stripes"]}',
        "tiger",
        ["orange fur", "black stripes"],
        id="json-object",
    ),
    pytest.param(
        '["orange fur", "black stripes", "long ta',
        "tiger",
        ["orange fur", "black stripes"],
        id="json-truncated",
    ),
    pytest.param(
        "orange fur, black stripes; long tail",
        "tiger",
        ["orange fur", "black stripes", "long tail"],
        id="single-line-separated",
    ),
    pytest.param(
        "Sure! Here are some attributes of a tiger: orange fur, black stripes, and a long tail. "
        "I hope this helps!",
        "tiger",
        ["orange fur", "black stripes", "a long tail"],
        id="single-line-with-chatter",
    ),
    pytest.param(
        "Sure! Here are the visual attributes:\n\n1. Orange fur\n2. Black stripes\n\n"
        "I hope this helps! Let me know if you need more.",
        "tiger",
        ["Orange fur", "Black stripes"],
        id="list-with-chatter",
    ),
    pytest.param(
        "Certainly!\norange fur\nblack stripes\nI hope this helps!",
        "tiger",
        ["orange fur", "black stripes"],
        id="plain-lines-with-chatter",
    ),
    pytest.param(
        "1. Orange fur\n2. orange FUR\n3. Black stripes\n4. black stripes.",
        "tiger",
        ["Orange fur", "Black stripes"],
        id="case-insensitive-duplicates",
    ),
    pytest.param(
        "1. **Orange fur**\n2. *black stripes*\n3. `long tail`",
        "tiger",
        ["Orange fur", "black stripes", "long tail"],
        id="markdown",
    ),
    pytest.param(
        "1. Orange fur.\n2. \"Black stripes\"\n3. 'Long tail';\n4. “sharp claws”!",
        "tiger",
        ["Orange fur", "Black stripes", "Long tail", "sharp claws"],
        id="punctuation-quotes",
    ),
    pytest.param("1. Tiger\n2. a tiger\n3. Orange fur", "tiger", ["Orange fur"], id="label-repeated"),
    pytest.param("1. \n2. ...\n3. Orange fur\n-  \n", "tiger", ["Orange fur"], id="empty-items"),
    pytest.param("", "tiger", [], id="empty"),
    pytest.param("I'm sorry, I can't help with that.", "tiger", [], id="refusal"),
    pytest.param("```\n```", "tiger", [], id="empty-fence"),
    pytest.param(
        "1. 橙色的毛\n2. 黑色条纹\n3. Полосатый хвост",
        "老虎",
        ["橙色的毛", "黑色条纹", "Полосатый хвост"],
        id="non-latin-list",
    ),
    pytest.param(
        "橙色的毛，黑色条纹、长尾巴", "老虎", ["橙色的毛", "黑色条纹", "长尾巴"], id="non-latin-line"
    ),
    pytest.param(
        "Tigers are large cats that live in Asia and have been hunted for centuries. They have "
        "orange fur with black stripes. They are often seen hunting deer in the forest at night.",
        "tiger",
        [],
        id="prose-paragraph",
    ),
    pytest.param(
        "Attributes:\n- orange fur\n\nThe tiger is a large carnivorous cat native to Asia, known "
        "for its power and its beautiful coat, which hunters have prized for a very long time.",
        "tiger",
        ["orange fur"],
        id="list-then-paragraph",
    ),
    pytest.param(
        "## Attributes\n**Color:** orange with black stripes\n**Size:** large",
        "tiger",
        ["Color: orange with black stripes", "Size: large"],
        id="bold-headers",
    ),
    pytest.param(
        "- 1. orange fur\n- 2. black stripes", "tiger", ["orange fur", "black stripes"], id="nested-markers"
    ),
]


@pytest.mark.parametrize(("text", "label", "expected"), CASES)
def test_formats(text: str, label: str, expected: list[str]) -> None:
    assert parse_attributes(text, label) == expected


def test_max_phrases_truncates_in_order() -> None:
    text = "\n".join(f"{i}. attribute number {word}" for i, word in enumerate("abcdefgh", start=1))
    assert parse_attributes(text, "x", max_phrases=3) == [
        "attribute number a",
        "attribute number b",
        "attribute number c",
    ]
    assert parse_attributes(text, "x", max_phrases=0) == []


def test_long_item_is_cut_at_a_clause_boundary() -> None:
    text = (
        "1. Black and white stripes covering the whole body of the animal, which is usually "
        "seen in the open savanna of eastern Africa"
    )
    # The comma after "animal" is the last boundary within 12 words.
    assert parse_attributes(text, "zebra") == [
        "Black and white stripes covering the whole body of the animal"
    ]


def test_long_item_without_boundary_is_hard_cut_without_dangling_words() -> None:
    text = "- one two three four five six seven eight nine ten of eleven twelve"
    assert parse_attributes(text, "x", max_words=11) == ["one two three four five six seven eight nine ten"]
    assert parse_attributes(text, "x", max_words=5) == ["one two three four five"]


def test_long_item_keeps_its_first_sentence() -> None:
    text = "1. Striped orange fur. Tigers are the largest living cats and are found across Asia today."
    assert parse_attributes(text, "tiger") == ["Striped orange fur"]


def test_every_phrase_respects_max_words() -> None:
    text = "\n".join(f"- {' '.join(['word'] * n)} {n}" for n in range(1, 30))
    for max_words in (1, 3, 12):
        phrases = parse_attributes(text, "x", max_phrases=50, max_words=max_words)
        assert phrases
        assert all(len(p.split()) <= max_words for p in phrases)


def test_non_string_input_returns_empty() -> None:
    assert parse_attributes(None, "tiger") == []  # type: ignore[arg-type]
    assert parse_attributes(b"1. orange fur", "tiger") == []  # type: ignore[arg-type]


def _random_text(rng: random.Random) -> str:
    pieces = ["1. ", "- ", "* ", "\n", "```json\n", "```", "[", "]", "{", "}", '"', ",", ":", ". ", "**"]
    parts = []
    for _ in range(rng.randint(0, 40)):
        if rng.random() < 0.4:
            parts.append(rng.choice(pieces))
        else:
            parts.append("".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(0, 12))))
    return "".join(parts)


def test_fuzz_never_raises_and_stays_bounded() -> None:
    rng = random.Random(1234)
    for _ in range(500):
        text = _random_text(rng)
        label = "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 5)))
        max_phrases = rng.randint(0, 6)
        max_words = rng.randint(1, 12)
        phrases = parse_attributes(text, label, max_phrases=max_phrases, max_words=max_words)
        assert isinstance(phrases, list)
        assert len(phrases) <= max_phrases
        for phrase in phrases:
            assert isinstance(phrase, str)
            assert phrase and phrase == phrase.strip()
            assert len(phrase.splitlines()) == 1
            assert len(phrase.split()) <= max_words
            assert not phrase.endswith(".")


def test_control_characters_and_replacement_chars_never_reach_phrases():
    phrases = parse_attributes("1. red\x05 colour\n2. bl\ufffdue sky", "x")
    assert phrases == ["red colour", "bl ue sky"]
