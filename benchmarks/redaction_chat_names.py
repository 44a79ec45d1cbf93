"""Person names as clinicians type them in chat, and the capitalised words around them.

    python benchmarks/redaction_chat_names.py [--no-model] [--show]

`benchmarks/data/chat_names.txt` holds about 420 messages written the way
Brazilian aesthetic and health clinicians type to the assistant: WhatsApp style,
without accents, all in lower case or in capitals; referrals, prescription
drafts, lab notes, relatives ("filha da paciente"), nicknames and diminutives,
hyphenated and compound names, names registered after 1980, foreign names, names
beside identifiers and dates, lists, sign-offs and salutations, names in quotes
or parentheses, and clean clinical sentences full of capitalised words that are
no names (procedures, products, brands, anatomy, places, months). Person names
are in braces.

The rules of the fifth name round were written against these messages, so they
are a development set, not an independent measure: the figures show what the
rules catch of this kind of text and keep it from slipping back.
`benchmarks/data/chat_names_lower.txt` holds about 150 more, written in the sixth
round after its rules were drafted and reported apart: lower case without accents
above all, names beside a patient's verb, a clinician's verb, a label, an
identifier, a time or an age, and clean lines of clinical adjectives and products. Words of a
name count as caught when any placeholder covers them; an honorific inside the
braces (Sr., Dra., Dona, Tia) is not counted. Other words count as altered when
a NOME placeholder covers them.
`benchmarks/data/chat_names_initials.txt` holds about 90 more of the seventh round,
written before its rules: initials after a context word or a title ("paciente
M.S.L., 45 anos", "Dr. J. R. Souza"), speaker labels of a transcript (a message of
several lines, written with a literal backslash-n between them), given names alone
that are also words, foreign surnames after a verb of saying, and clean lines of
clinical abbreviations (H.D.A., P.A., V.O.) and of adjectives after "paciente".
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compliance.redaction import detect_entities, names  # noqa: E402

MESSAGES = ROOT / "benchmarks" / "data" / "chat_names.txt"
LOWER_CASE_MESSAGES = ROOT / "benchmarks" / "data" / "chat_names_lower.txt"
INITIALS_MESSAGES = ROOT / "benchmarks" / "data" / "chat_names_initials.txt"
_HONORIFICS = {"sr", "sra", "dr", "dra", "dona", "tia", "seu", "enf"}
_WORD_RE = re.compile(r"\w+")


def read_messages(path: Path = MESSAGES) -> list[tuple[str, list[bool]]]:
    """(text, whether each character belongs to a person's name) of every message."""
    messages = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        # a transcript is one message of several lines: "A.H.: oi\\nR.: oi"
        line = line.replace("\\n", "\n")
        text, mask, inside = [], [], False
        for ch in line:
            if ch in "{}":
                inside = ch == "{"
                continue
            text.append(ch)
            mask.append(inside)
        messages.append(("".join(text), mask))
    return messages


def score(text: str, mask: list[bool]) -> tuple[int, list[str], int, list[str]]:
    """(name words, those missed, other words, those a NOME placeholder altered)."""
    entities = detect_entities(text)
    covered = [False] * len(text)
    as_name = [False] * len(text)
    for e in entities:
        for k in range(e.start, e.end):
            covered[k] = True
            as_name[k] = as_name[k] or e.entity == "NOME"
    name_words = other_words = 0
    missed, altered = [], []
    for m in _WORD_RE.finditer(text):
        if mask[m.start()]:
            if m.group().lower() in _HONORIFICS:
                continue
            name_words += 1
            if not covered[m.start()]:
                missed.append(m.group())
        else:
            other_words += 1
            if as_name[m.start()]:
                altered.append(m.group())
    return name_words, missed, other_words, altered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-model", action="store_true", help="second signal off")
    parser.add_argument("--show", action="store_true", help="print the messages that fail")
    args = parser.parse_args()
    if args.no_model:
        names.SECOND_SIGNAL = None
    print("second signal:", "off" if args.no_model else "on")
    for path in (MESSAGES, LOWER_CASE_MESSAGES, INITIALS_MESSAGES):
        totals = [0, 0, 0, 0]
        messages = read_messages(path)
        for text, mask in messages:
            name_words, missed, other_words, altered = score(text, mask)
            totals[0] += name_words
            totals[1] += len(missed)
            totals[2] += other_words
            totals[3] += len(altered)
            if args.show and (missed or altered):
                print(f"  missed {missed} altered {altered}: {text}")
        name_words, missed, other_words, altered = totals
        print(
            f"{path.name}, {len(messages)} messages: person-name words caught"
            f" {name_words - missed}/{name_words} ({(name_words - missed) / name_words:.4f}),"
            f" other words altered {altered}/{other_words}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
