#!/usr/bin/env python3
"""Rebuild the name lexicons of the PII redactor from their public source files.

    python scripts/build_name_lexicons.py SOURCE_DIR [--out compliance/redaction/data]

SOURCE_DIR holds the files listed in `compliance/redaction/data/README.md`
(IBGE 2010 given names, federal-servants surnames, ANVISA lists, IBGE
municipalities and states, and the First HAREM train / Paramopama corpora
under `ner/`). The output is deterministic: running the script twice on the
same sources gives byte-identical files (gzip without a timestamp).

Written files (gzip TSV, one entry per line, keys upper case without accents):

- `given_names.tsv.gz`  NAME<TAB>count   IBGE Censo 2010 given names (ODC-PDDL-1.0),
  count = sum of the per-decade columns (an empty cell means suppressed, read as 0).
- `surnames.tsv.gz`     NAME<TAB>count   last surnames of the federal servants register
  (Portal da Transparência, Dec 2020), kept when borne by two or more people: a singleton
  surname from a public register is near-identifying and mostly typos.
- `not_names.tsv.gz`    WORD<TAB>kinds   words that are often not a person's name:
  `a` word of an ANVISA active ingredient, `p` ANVISA product/brand name (single-word names
  and the first word of longer ones), `w` everyday word (written in lower case mid-sentence
  at least as often as capitalised in the First HAREM train and Paramopama corpora), `c`
  first word of an ANVISA registration holder's name that no name list holds (Allergan).
- `places.tsv.gz`       PHRASE<TAB>kind  municipality (`m`) and state (`s`) names, used as
  context ("São Paulo" is a place, "Paulo Henrique" a person), never as a blocklist.

Only word lists and counts are written; no sentence of the corpora is copied.
"""

from __future__ import annotations

import argparse
import collections
import csv
import gzip
import io
import re
import sys
import unicodedata
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "compliance" / "redaction" / "data"
MIN_SURNAME_COUNT = 2
_WORD_RE = re.compile(r"[A-Z]+(?:'[A-Z]+)?")


def key(word: str) -> str:
    """Accent-folded upper-case key, the lookup form of every shipped list."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper().strip()


def _write_tsv(path: Path, rows: list[tuple[str, str]]) -> None:
    buffer = io.BytesIO()
    # mtime=0 keeps the archive byte-identical between runs.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as fh:
        fh.write("".join(f"{a}\t{b}\n" for a, b in rows).encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def given_names(src: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with (src / "ibge2010_prenomes_por_decada.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for row in reader:
            name = key(row[0])
            if _WORD_RE.fullmatch(name):
                counts[name] = counts.get(name, 0) + sum(int(x) for x in row[1:] if x)
    return counts


def surnames(src: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    path = src / "servidores_federais_2020_sobrenomes.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for row in reader:
            name, count = key(row[0]), int(row[1])
            if count >= MIN_SURNAME_COUNT and _WORD_RE.fullmatch(name):
                counts[name] = counts.get(name, 0) + count
    return counts


def _csv_column(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [row[column] for row in csv.DictReader(fh)]


def anvisa_words(src: Path) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = collections.defaultdict(set)
    for name in _csv_column(src / "anvisa_principios_ativos.csv", "nome"):
        for word in _WORD_RE.findall(key(name)):
            if len(word) >= 4:
                kinds[word].add("a")
    for name in _csv_column(src / "anvisa_nomes_produto.csv", "nome"):
        words = _WORD_RE.findall(key(name))
        if words and len(words[0]) >= 4:
            kinds[words[0]].add("p")
    return kinds


def company_words(src: Path, names: set[str]) -> set[str]:
    """First words of ANVISA registration holders (Allergan, Galderma) that no name list holds.

    Company names often carry a founder's name ("J. MONTEIRO DA SILVA LTDA"), so a
    word of the given-name or surname lists is never taken from them.
    """
    words = set()
    for name in _csv_column(src / "anvisa_empresas.csv", "nome"):
        found = _WORD_RE.findall(key(name))
        if found and len(found[0]) >= 4 and found[0] not in names:
            words.add(found[0])
    return words


def _conll_tokens(path: Path):
    """(token, tag, sentence_start) of a two-column CoNLL file."""
    start = True
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("-DOCSTART-"):
                start = True
                continue
            token, _, tag = line.partition("\t")
            yield token, tag.strip(), start
            start = token in {".", "!", "?", ":"}


def everyday_words(src: Path) -> set[str]:
    """Words written in lower case mid-sentence at least as often as capitalised outside names.

    Counted on the tuning corpora only (First HAREM train and Paramopama);
    MiniHAREM is the held-out test set and is never read here.
    """
    lower: collections.Counter[str] = collections.Counter()
    capital: collections.Counter[str] = collections.Counter()
    for name in ("harem_FirstHAREM-total-train.conll.gz", "paramopama_plus_second_harem.conll.gz"):
        path = src / "ner" / name
        if not path.exists():
            sys.exit(f"missing tuning corpus {path}")
        for token, tag, sentence_start in _conll_tokens(path):
            if not token.isalpha() or len(token) < 2:
                continue
            if token.islower():
                lower[key(token)] += 1
            elif not sentence_start and token[0].isupper() and "PESSOA" in tag:
                capital[key(token)] += 1
    return {word for word, n in lower.items() if n >= 2 and n >= capital[word]}


def places(src: Path) -> list[tuple[str, str]]:
    rows = {key(n): "m" for n in _csv_column(src / "ibge_municipios.csv", "nome")}
    rows.update({key(n): "s" for n in _csv_column(src / "ibge_estados.csv", "nome")})
    return sorted(rows.items())


def build(src: Path, out: Path) -> dict[str, int]:
    given = given_names(src)
    family = surnames(src)
    kinds = anvisa_words(src)
    for word in everyday_words(src):
        kinds[word].add("w")
    for word in company_words(src, given.keys() | family.keys()):
        kinds[word].add("c")
    place_rows = places(src)

    def by_count(counts: dict[str, int]) -> list[tuple[str, str]]:
        return [(n, str(c)) for n, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    out.mkdir(parents=True, exist_ok=True)
    _write_tsv(out / "given_names.tsv.gz", by_count(given))
    _write_tsv(out / "surnames.tsv.gz", by_count(family))
    not_names = [(w, "".join(sorted(k))) for w, k in sorted(kinds.items())]
    _write_tsv(out / "not_names.tsv.gz", not_names)
    _write_tsv(out / "places.tsv.gz", place_rows)
    return {
        "given_names": len(given),
        "surnames": len(family),
        "not_names": len(kinds),
        "places": len(place_rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source_dir", type=Path, help="directory holding the source files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    if not (args.source_dir / "ibge2010_prenomes_por_decada.csv").exists():
        parser.error(f"{args.source_dir} does not hold ibge2010_prenomes_por_decada.csv")
    for name, count in build(args.source_dir, args.out).items():
        print(f"{name}: {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
