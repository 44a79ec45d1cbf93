#!/usr/bin/env python3
"""Train the statistical second signal of the name detector (`compliance/redaction/name_model.py`).

    python scripts/train_name_model.py NER_DIR [--out compliance/redaction/data/name_model.tsv.gz]

NER_DIR holds the Portuguese corpora with person annotations (see
`compliance/redaction/data/README.md`):

- `harem_FirstHAREM-total-train.json.gz`  First HAREM, training part (train);
- `harem_FirstHAREM-total-dev.json.gz`    First HAREM, development part (tuning);
- `paramopama_plus_second_harem.conll.gz` Paramopama + Second HAREM, IO tags: one
  sentence in ten, chosen by position, is held out for tuning, the rest trains.

MiniHAREM, the test collection, is never read here, and neither is LeNER-Br.

What is learnt: for every capitalised word that the rules of `names.find_names`
leave undecided and that `names.model_candidate` admits, whether it lies in a
person span. The model is a logistic regression over `name_model.features`,
fitted with AdaGrad and L2 regularisation; features seen fewer than
`--min-count` times in training are dropped, and so are weights that round to
zero. The decision threshold is the one that maximises F-beta (beta = `--beta`,
recall weighted over precision) on the tuning words. The output is
deterministic for the same sources and options (fixed seed, sorted, gzip
without a timestamp).

Only feature weights are written (word forms, affixes and flags with a number
each); no sentence of the corpora is copied.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compliance.redaction import lexicon, name_model, names  # noqa: E402
from compliance.redaction.detectors import _TOKEN_RE  # noqa: E402

DEFAULT_OUT = name_model.MODEL_PATH
HELD_OUT_EVERY = 10  # one Paramopama sentence group in ten is held out for tuning
SENTENCES_PER_TEXT = 5
_NO_SPACE_BEFORE = frozenset(",.;:!?)]}%»”")
_NO_SPACE_AFTER = frozenset("([{«“")

Example = tuple[list[str], int]


def _paragraphs(text: str):
    position = 0
    for line in text.split("\n"):
        if line.strip():
            yield position, position + len(line)
        position += len(line) + 1


def harem_texts(path: Path):
    """(text, person spans) of each paragraph of a HAREM JSON file."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        documents = json.load(fh)
    for document in documents:
        text = document["doc_text"]
        persons = [
            (e["start_offset"], e["end_offset"])
            for e in document["entities"]
            if e["label"] == "PESSOA"
        ]
        for beg, end in _paragraphs(text):
            spans = [(s - beg, e - beg) for s, e in persons if beg <= s and e <= end]
            yield text[beg:end], spans


def _conll_sentences(path: Path):
    sentence: list[tuple[str, str]] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip():
                if sentence:
                    yield sentence
                sentence = []
                continue
            token, _, tag = line.partition("\t")
            sentence.append((token, tag.strip()))
    if sentence:
        yield sentence


def _detokenise(tokens: list[tuple[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """Text of CoNLL tokens with ordinary spacing, and the person spans (IO tags merged)."""
    parts: list[str] = []
    length = 0
    spans: list[tuple[int, int]] = []
    previous = ""
    for token, tag in tokens:
        if parts and token[0] not in _NO_SPACE_BEFORE and previous not in _NO_SPACE_AFTER:
            parts.append(" ")
            length += 1
        if tag == "PESSOA":
            if spans and spans[-1][1] >= length - 1:
                spans[-1] = (spans[-1][0], length + len(token))
            else:
                spans.append((length, length + len(token)))
        parts.append(token)
        length += len(token)
        previous = token
    return "".join(parts), spans


def paramopama_texts(path: Path, held_out: bool):
    """(text, person spans) of groups of sentences; every tenth group is held out."""
    group: list[tuple[str, str]] = []
    count = index = 0
    for sentence in _conll_sentences(path):
        group.extend(sentence)
        count += 1
        if count == SENTENCES_PER_TEXT:
            if (index % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == held_out:
                yield _detokenise(group)
            group, count = [], 0
            index += 1


def candidates(texts) -> list[Example]:
    """Feature lists and labels of the words the rules leave to the second signal."""
    examples: list[Example] = []
    for text, spans in texts:
        tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN_RE.finditer(text)]
        asked: list[int] = []

        def record(text, tokens, i, asked=asked):
            asked.append(i)
            return False

        for _ in names.find_names(text, tokens, second_signal=record):
            pass
        for i in asked:
            beg, end, _ = tokens[i]
            label = int(any(s <= beg and end <= e for s, e in spans))
            examples.append((name_model.features(text, tokens, i), label))
    return examples


def train(
    examples: list[Example], *, epochs: int, l2: float, rate: float, min_count: int, seed: int
) -> dict[str, float]:
    """Logistic regression, AdaGrad, L2; features seen fewer than min_count times dropped."""
    counts = collections.Counter(f for feats, _ in examples for f in set(feats))
    keep = {f for f, c in counts.items() if c >= min_count}
    data = [([f for f in feats if f in keep], y) for feats, y in examples]
    weights: dict[str, float] = dict.fromkeys(keep, 0.0)
    squares: dict[str, float] = dict.fromkeys(keep, 1e-8)
    rng = random.Random(seed)
    order = list(range(len(data)))
    for _ in range(epochs):
        rng.shuffle(order)
        for index in order:
            feats, y = data[index]
            margin = sum(weights[f] for f in feats)
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, margin))))
            error = p - y
            for f in feats:
                gradient = error + l2 * weights[f]
                squares[f] += gradient * gradient
                weights[f] -= rate * gradient / math.sqrt(squares[f])
    return {f: round(w, 3) for f, w in weights.items() if round(w, 3) != 0.0}


def out_of_fold_margins(
    examples: list[Example], folds: int, options: dict
) -> list[tuple[float, int, str]]:
    """(margin, label, group) of every training word, scored by a model trained on the
    other folds (words assigned to folds by position, so the split is fixed)."""
    out = []
    for fold in range(folds):
        rest = [e for k, e in enumerate(examples) if k % folds != fold]
        model = name_model.NameModel(train(rest, **options), {})
        out += [
            (model.margin(feats), y, name_model.group(feats))
            for k, (feats, y) in enumerate(examples)
            if k % folds == fold
        ]
    return out


def best_threshold(
    margins: list[tuple[float, int]], beta: float
) -> tuple[float, float, float, float]:
    """(threshold, F-beta, precision, recall) maximising F-beta over the tuning words."""
    positives = sum(y for _, y in margins)
    best = (0.0, -1.0, 0.0, 0.0)
    ordered = sorted(margins, reverse=True)
    true = false = 0
    b2 = beta * beta
    for k, (margin, y) in enumerate(ordered):
        true += y
        false += 1 - y
        if k + 1 < len(ordered) and ordered[k + 1][0] == margin:
            continue
        precision = true / (true + false)
        recall = true / positives if positives else 0.0
        if precision + recall == 0:
            continue
        score = (1 + b2) * precision * recall / (b2 * precision + recall)
        if score > best[1]:
            best = (margin, score, precision, recall)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ner_dir", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--beta", type=float, default=2.0)
    parser.add_argument("--beta-start", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--folds",
        type=int,
        default=5,
        help="folds of the training words whose out-of-fold margins join the tuning words "
        "(0: tuning words only)",
    )
    args = parser.parse_args()
    started = time.process_time()
    ner = args.ner_dir
    lexicon.tables()
    train_examples = candidates(harem_texts(ner / "harem_FirstHAREM-total-train.json.gz"))
    train_examples += candidates(
        paramopama_texts(ner / "paramopama_plus_second_harem.conll.gz", held_out=False)
    )
    tune_examples = candidates(harem_texts(ner / "harem_FirstHAREM-total-dev.json.gz"))
    tune_examples += candidates(
        paramopama_texts(ner / "paramopama_plus_second_harem.conll.gz", held_out=True)
    )
    print(
        f"candidate words: train {len(train_examples)} "
        f"({sum(y for _, y in train_examples)} in person names), "
        f"tuning {len(tune_examples)} ({sum(y for _, y in tune_examples)})"
    )
    train_options = {
        "epochs": args.epochs,
        "l2": args.l2,
        "rate": args.rate,
        "min_count": args.min_count,
        "seed": args.seed,
    }
    weights = train(train_examples, **train_options)
    model = name_model.NameModel(weights, dict.fromkeys(name_model.GROUPS, 0.0))
    betas = {"inside": args.beta, "start": args.beta_start}
    thresholds = {}
    print(f"features kept: {len(weights)}")
    # The tuning words alone hold under a hundred sentence starts, too few for a stable
    # threshold: the out-of-fold margins of the training words are added to them (each
    # scored by a model trained without its fold, as a new word would be).
    held_out = out_of_fold_margins(train_examples, args.folds, train_options) if args.folds else []
    for group in name_model.GROUPS:
        margins = [
            (model.margin(feats), y)
            for feats, y in tune_examples
            if name_model.group(feats) == group
        ] + [(margin, y) for margin, y, g in held_out if g == group]
        best, score, precision, recall = best_threshold(margins, betas[group])
        # The F-beta curve is flat near its top, so the margin where it peaks jumps
        # by a few tenths whenever the rules change which words reach the model. For a
        # calibrated model (its held-out margins are: see the data README) the
        # threshold that maximises F-beta is the probability F*/(1 + beta^2), F* the
        # best F-beta (Lipton, Elkan and Narayanaswamy 2014, "Optimal thresholding of
        # classifiers to maximize F1"); it moves only as much as F* does.
        probability = score / (1 + betas[group] ** 2)
        thresholds[group] = round(math.log(probability / (1 - probability)), 4)
        chosen = [(m, y) for m, y in margins if m >= thresholds[group]]
        print(
            f"  {group}: {len(margins)} tuning words, best F{betas[group]:g} {score:.4f} "
            f"(at {best:.4f}: precision {precision:.4f}, recall {recall:.4f}); threshold "
            f"{thresholds[group]:.4f} (probability {probability:.4f}): precision "
            f"{sum(y for _, y in chosen) / max(1, len(chosen)):.4f}, recall "
            f"{sum(y for _, y in chosen) / max(1, sum(y for _, y in margins)):.4f}"
        )
    name_model.write_model(args.out, weights, thresholds)
    print(
        f"wrote {args.out} ({args.out.stat().st_size:,} bytes) in "
        f"{time.process_time() - started:.1f} s of CPU"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
