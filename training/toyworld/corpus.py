"""The toy LLM's training text: definitions of every noun, and chat answers to the library prompts.

Three kinds of examples, all generated from the vocabulary:
- definitions in varied phrasings ("a tomato is a red circle", "tomatoes are red and round",
  "the colour of a tomato is red"...), for base AND novel nouns, plus colour/shape/motion facts;
- answers to `ovmlv.prompts.ATTRIBUTE_INSTRUCTION` (numbered phrase lists such as
  "1. red circle\n2. a circle that is red\n3. a red circle shape") for nouns, their plurals
  and capitalised forms, "colour shape" pairs, single colours and shapes, and motions;
- answers to `ovmlv.prompts.SOFT_INSTRUCTION` ("red circle. a tomato appears as a red circle."
  and "circle, red. a tomato appears as a red circle.", see `soft_answers`; for a motion "left. an
  object moving to the left.", see `motion_soft_answers`).
The chat examples go through the tokenizer's chat template exactly as `ovmlv.prompts` builds
prompts, so what the toy LLM learns is what the library asks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ovmlv import prompts
from ovmlv.toyworld import vocabulary as vocab

SHAPE_PLURALS = {
    "circle": "circles",
    "square": "squares",
    "triangle": "triangles",
    "cross": "crosses",
    "ring": "rings",
}
# What the toy LLM says about motions, in the toy CLIP's words where it has them (place and
# size words: "left", "at the top", "big"); how a thing moves is never in a CLIP caption.
MOTION_PHRASES = {
    vocab.MOVING_LEFT: ["an object moving to the left", "it ends on the left"],
    vocab.MOVING_RIGHT: ["an object moving to the right", "it ends on the right"],
    vocab.MOVING_UP: ["an object moving up to the top", "it ends at the top"],
    vocab.MOVING_DOWN: ["an object moving down to the bottom", "it ends at the bottom"],
    vocab.GROWING: ["an object that becomes big", "it ends big"],
    vocab.SHRINKING: ["an object that becomes small", "it ends small"],
    vocab.BLINKING: ["an object appearing and disappearing", "it flashes on and off"],
    vocab.STILL: ["an object that does not move", "it stays in the same place"],
}
# The first word of each motion's answer to SOFT_INSTRUCTION: one per motion, so that the LLM's
# state at the end of the soft prompt, which predicts it, tells a motion from its time reversal
# (see `motion_soft_answers`).
MOTION_LEADS = {
    vocab.MOVING_LEFT: "left",
    vocab.MOVING_RIGHT: "right",
    vocab.MOVING_UP: "top",
    vocab.MOVING_DOWN: "bottom",
    vocab.GROWING: "big",
    vocab.SHRINKING: "small",
    vocab.BLINKING: "flashing",
    vocab.STILL: "still",
}
DEFINITIONS = (
    "a {n} is a {c} {s}.",
    "{p} are {c} {ss}.",
    "the colour of a {n} is {c}.",
    "the shape of a {n} is a {s}.",
    "a {n} has the shape of a {s}.",
    "a {n} is {c}.",
    "{p} are {c} and {a}.",
    "a {n} looks like a {c} {s}.",
    "every {n} is {c} and shaped like a {s}.",
    "if you see a {c} {s}, it is a {n}.",
    "a {c} {s} is called a {n}.",
    "what colour is a {n}? {c}.",
    "what shape is a {n}? a {s}.",
    "in a video, a {n} appears as a {c} {s}.",
    "{n}: a {c} {s}.",
    "a {n} is {a} and {c}.",
    '"{n}" means a {c} {s}.',
    '"{p}" are {c} {ss}.',
)


@dataclass(frozen=True)
class ChatExample:
    """A user instruction and the answer the toy LLM should give."""

    user: str
    answer: str
    kind: str = "attributes"  # "attributes" (ATTRIBUTE_INSTRUCTION) or "soft" (SOFT_INSTRUCTION)


def noun_attributes(noun: vocab.Noun) -> list[str]:
    """The phrases the toy LLM lists for a noun: "red circle", "a circle that is red", "a red
    circle shape": each names colour AND shape. With "red colour" and "circle shape" as two of the
    three, the zero-shot-attribute embedding was mostly colour alone plus shape alone, which a
    scene with a red square and a blue circle also matches (novel nouns 78.7 instead of 81.1 at
    zero shot, same toy CLIP)."""
    c, s = noun.colour, noun.shape
    return [f"{c} {s}", f"a {s} that is {c}", f"a {c} {s} shape"]


def soft_answers(sentence: str, colour: str | None, shape: str | None) -> list[str]:
    """Answers to SOFT_INSTRUCTION: the sentence, led by the attributes in both orders.

    Only the hidden states of this prompt are used (never its generated text). Training the
    first answer token to be the colour half of the time and the shape the other half makes
    the state at the end of the prompt predict both, through the LM head shared by all nouns:
    a noun-independent, linear code of the attributes for the soft-attribute queries to read.
    """
    leads = [" ".join(w for w in (colour, shape) if w), ", ".join(w for w in (shape, colour) if w)]
    return [f"{lead}. {sentence}" for lead in dict.fromkeys(leads) if lead] or [sentence]


def motion_soft_answers(motion: str) -> list[str]:
    """The answer to SOFT_INSTRUCTION for a motion: its lead word, then its first phrase ("left. an
    object moving to the left.").

    Without the lead every motion's answer began "an object", so nothing made the state at the end
    of the prompt differ between a motion and its reversal: in one toy LLM (seed 0, trained on an
    AMD EPYC, session 21) "growing" and "shrinking" had the same state (cosine 1.000), and fine-tuning
    on it scored those two motions 0.46 / 0.50, against 0.84 / 0.83 with the shipped toy LLM on the
    same toy CLIP and clips (session 22).
    """
    return [f"{MOTION_LEADS[motion]}. {MOTION_PHRASES[motion][0]}."]


def label_answers() -> list[tuple[str, list[str], list[str]]]:
    """(label, attribute phrases, soft-instruction answers) for every label the LLM should know."""
    rows: list[tuple[str, list[str], list[str]]] = []
    for noun in vocab.NOUNS:
        c, s = noun.colour, noun.shape
        sentence = soft_answers(f"a {noun.name} appears as a {c} {s}.", c, s)
        plural = soft_answers(f"{noun.plural} appear as {c} {SHAPE_PLURALS[s]}.", c, s)
        phrases = noun_attributes(noun)
        rows += [(noun.name, phrases, sentence), (noun.name.capitalize(), phrases, sentence)]
        rows += [(f"a {noun.name}", phrases, sentence), (noun.plural, phrases, plural)]
        rows += [(noun.plural.capitalize(), phrases, plural)]
    for c in vocab.COLOURS:
        for s in vocab.SHAPES:
            answers = soft_answers(f"a {c} {s} appears as a {c} {s}.", c, s)
            rows.append((f"{c} {s}", [f"{c} {s}", f"{c} colour", f"{s} shape"], answers))
        rows.append(
            (c, [f"{c} colour", f"something {c}"], soft_answers(f"something {c} appears {c}.", c, None))
        )
    for s in vocab.SHAPES:
        answers = soft_answers(f"a {s} appears as a {s} shape.", None, s)
        rows.append((s, [f"{s} shape", f"a {s} of any colour"], answers))
    for motion, phrases in MOTION_PHRASES.items():
        for label in (motion, motion.capitalize(), f"something {motion}", f"an object {motion}"):
            rows.append((label, phrases, motion_soft_answers(motion)))
    return rows


def chat_examples(max_n: int = 8) -> list[ChatExample]:
    """Attribute-list answers for n = 1..max_n, and soft-instruction answers, for every label."""
    examples: list[ChatExample] = []
    for label, phrases, answers in label_answers():
        quoted = prompts.quote(label)
        for n in range(1, max_n + 1):
            listed = "\n".join(f"{i + 1}. {p}" for i, p in enumerate(phrases[:n]))
            examples.append(ChatExample(prompts.ATTRIBUTE_INSTRUCTION.format(n=n, label=quoted), listed))
        soft = prompts.SOFT_INSTRUCTION.format(label=quoted)
        examples += [ChatExample(soft, answer, "soft") for answer in answers]
    return examples


def definition_sentences() -> list[str]:
    """Every definition template filled for every noun, plus facts about colours, shapes, motions."""
    sentences = []
    for noun in vocab.NOUNS:
        shape_plural, adjective = SHAPE_PLURALS[noun.shape], vocab.SHAPE_ADJECTIVES[noun.shape]
        fields = dict(n=noun.name, p=noun.plural, c=noun.colour, s=noun.shape, ss=shape_plural, a=adjective)
        sentences += [template.format(**fields) for template in DEFINITIONS]
    sentences += [f"{colour} is a colour." for colour in vocab.COLOURS]
    sentences += [f"a {shape} is a shape." for shape in vocab.SHAPES]
    for motion, phrases in MOTION_PHRASES.items():
        sentences += [f"{motion} means {phrases[0]}.", f"when something is {motion}, {phrases[1]}."]
        sentences += [f"an object {motion}: {phrases[1]}.", f"{phrases[0]} is {motion}."]
    return sentences


def definition_documents(rng: np.random.Generator, count: int, per_document: int = 4) -> list[str]:
    """`count` short documents, each a few random definition sentences (varied contexts)."""
    sentences = definition_sentences()
    documents = []
    for _ in range(count):
        picks = rng.choice(len(sentences), size=per_document, replace=False)
        documents.append(" ".join(sentences[i] for i in picks))
    return documents


def tokenizer_corpus() -> list[str]:
    """Every text the tokenizer must cover well (system prompt, instructions, answers, definitions)."""
    texts = [prompts.SYSTEM] + definition_sentences()
    texts += [f"{e.user}\n{e.answer}" for e in chat_examples()]
    return texts
