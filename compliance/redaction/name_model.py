"""A statistical second signal for capitalised words the name rules do not decide.

The rules of `names` redact a capitalised word when the lexicons or a context
word make it a name. Words no lexicon holds (Khomeini, Chomsky, a nickname), or
an ambiguous given name alone at the start of a sentence, are left to this
model: a logistic regression over the word's own features (accent-folded form,
prefixes and suffixes, shape, lexicon flags) and its neighbours' (words,
flags, capitalisation, punctuation around it, position in the sentence).

It is trained by `scripts/train_name_model.py` on Portuguese text with person
annotations (see `data/README.md` for the corpora, their licences and how the
model was tuned) and ships as a small gzip TSV of feature weights
(`data/name_model.tsv.gz`). Inference is a sum of dictionary look-ups per
candidate word, in plain Python; nothing is downloaded or loaded from outside
the package. The weights are read once per process, on first use.
"""

from __future__ import annotations

import gzip
import math
import threading
from collections.abc import Sequence

from . import lexicon

Token = tuple[int, int, str]

MODEL_PATH = lexicon.DATA_DIR / "name_model.tsv.gz"

# Lexicon flags the model sees, by the name of their feature.
_FLAG_FEATURES = (
    ("first", lexicon.FIRST),
    ("ambiguous", lexicon.FIRST_AMBIGUOUS),
    ("surname", lexicon.SURNAME),
    ("surname_word", lexicon.SURNAME_COMMON_WORD),
    ("common", lexicon.COMMON),
    ("rare", lexicon.RARE),
    ("not_name", lexicon.NOT_NAME),
    ("mainly_surname", lexicon.MAINLY_SURNAME),
    ("place_word", lexicon.PLACE),
    ("particle", lexicon.PARTICLE),
    ("stop", lexicon.STOP),
    ("honorific", lexicon.HONORIFIC),
    ("context", lexicon.CONTEXT),
    ("suffix", lexicon.SUFFIX),
)
_SENTENCE_END = frozenset(".!?:;\n")
_FOREIGN_LETTERS = frozenset("kwyKWY")


def _gap(text: str, end: int, beg: int) -> str:
    """The punctuation between two tokens, spaces dropped, at most two characters."""
    gap = text[end:beg]
    if gap == " ":
        return ""
    return "".join(gap.split())[:2]


def _flag_names(flags: int) -> list[str]:
    return [name for name, bit in _FLAG_FEATURES if flags & bit]


def features(text: str, tokens: Sequence[Token], i: int) -> list[str]:
    """Feature strings of token i (a capitalised word), as the model was trained on."""
    beg, end, word = tokens[i]
    folded = lexicon.fold(word)
    flags = lexicon.flags_of(word)
    n = len(folded)
    out = [
        "bias",
        "w=" + folded,
        "s2=" + folded[-2:],
        "s3=" + folded[-3:],
        "s4=" + folded[-4:],
        "p2=" + folded[:2],
        "p3=" + folded[:3],
        "len=" + str(min(n, 12)),
    ]
    if word.isupper():
        out.append("shape=caps" if n > 1 else "shape=initial")
    elif word[1:].islower():
        out.append("shape=title")
    else:
        out.append("shape=mixed")
    if any(c in _FOREIGN_LETTERS for c in word):
        out.append("kwy")
    if word != folded.capitalize() and word.lower() != folded:
        out.append("accent")
    out.extend("f:" + name for name in _flag_names(flags))
    if lexicon.is_place((word,)):
        out.append("town")
    after = text[end : end + 1]
    out.append("after=" + (after if after and not after.isalnum() else "w"))
    if i:
        pbeg, pend, prev = tokens[i - 1]
        gap = _gap(text, pend, beg)
        sentence_start = any(c in _SENTENCE_END for c in text[pend:beg])
        out.append("gapb=" + gap)
        if sentence_start:
            out.append("start")
        else:
            pfold = lexicon.fold(prev)
            out.append("pw=" + pfold)
            out.append("pcap" if prev[0].isupper() else "plow")
            out.extend("pf:" + name for name in _flag_names(lexicon.flags_of(prev)))
            if len(prev) == 1 and prev.isupper():
                out.append("pinitial")
            if i > 1:
                p2 = tokens[i - 2][2]
                out.append("p2w=" + lexicon.fold(p2))
                out.append("pw+w=" + pfold + "|" + ("C" if p2[0].isupper() else "l"))
    else:
        out.append("start")
    if i + 1 < len(tokens):
        nbeg, nend, nxt = tokens[i + 1]
        gap = _gap(text, end, nbeg)
        out.append("gapa=" + gap)
        if not any(c in _SENTENCE_END for c in text[end:nbeg]) or gap == ".":
            out.append("nw=" + lexicon.fold(nxt))
            out.append("ncap" if nxt[0].isupper() else "nlow")
            out.extend("nf:" + name for name in _flag_names(lexicon.flags_of(nxt)))
            if len(nxt) == 1 and nxt.isupper():
                out.append("ninitial")
    else:
        out.append("last")
    return out


GROUPS = ("inside", "start")


def group(feats: Sequence[str]) -> str:
    """Which threshold applies: a word opening a sentence, where the capital says
    nothing (held to a stricter threshold), or any other capitalised word."""
    return "start" if "start" in feats else "inside"


class NameModel:
    """Feature weights and the decision thresholds (margins: log-odds) per `group`."""

    __slots__ = ("thresholds", "weights")

    def __init__(self, weights: dict[str, float], thresholds: dict[str, float]) -> None:
        self.weights = weights
        self.thresholds = thresholds

    def margin(self, feats: Sequence[str]) -> float:
        get = self.weights.get
        return sum(get(f, 0.0) for f in feats)

    def probability(self, feats: Sequence[str]) -> float:
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, self.margin(feats)))))

    def is_name(self, text: str, tokens: Sequence[Token], i: int) -> bool:
        feats = features(text, tokens, i)
        return self.margin(feats) >= self.thresholds[group(feats)]


def read_model(path=MODEL_PATH) -> NameModel:
    """Weights of a model file: `#threshold_<group>` lines, then feature<TAB>weight lines."""
    weights: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            name, _, value = line.rstrip("\n").rpartition("\t")
            if name.startswith("#threshold_"):
                thresholds[name.removeprefix("#threshold_")] = float(value)
            elif name:
                weights[name] = float(value)
    missing = set(GROUPS) - thresholds.keys()
    if missing:
        raise ValueError(f"{path}: no threshold for {', '.join(sorted(missing))}")
    return NameModel(weights, thresholds)


def write_model(path, weights: dict[str, float], thresholds: dict[str, float]) -> None:
    """Write a model file deterministically (sorted, gzip without a timestamp)."""
    rows = [f"#threshold_{name}\t{thresholds[name]:.4f}\n" for name in GROUPS]
    rows += [f"{name}\t{weight:.3f}\n" for name, weight in sorted(weights.items())]
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as fh,
    ):
        fh.write("".join(rows).encode("utf-8"))


_LOCK = threading.Lock()
_loaded: list[NameModel] = []


def model() -> NameModel:
    """The shipped model, read on first use and kept for the life of the process."""
    if not _loaded:
        with _LOCK:
            if not _loaded:
                _loaded.append(read_model())
    return _loaded[0]


def is_name(text: str, tokens: Sequence[Token], i: int) -> bool:
    """Does the shipped model read token i (a capitalised word) as part of a person's name?"""
    return model().is_name(text, tokens, i)
