"""Person-name recognition figures, with and without the statistical second signal.

    python benchmarks/redaction_names.py [--ner-dir ../shared/data/names/ner] [--test]
                                         [--no-model]
    python benchmarks/redaction_names.py --memory

Reports, word by word and entity by entity:

- the generated corpus (`compliance/redaction/data/corpus.jsonl`) as written, typed
  ALL IN CAPITALS and all in lower case: NOME recall, name-word recall, clean
  sentences altered;
- the tuning collections: First HAREM dev, and the tenth of Paramopama + Second
  HAREM that `scripts/train_name_model.py` holds out;
- with `--test`, MiniHAREM, the test collection (measure only: never tune on it).

`--no-model` turns the second signal off, to show what it adds. The HAREM and
Paramopama files are not shipped; they are read from `--ner-dir`. `--memory`
prints what the model (and the place-name prefixes the rules walk) add to a
process that already holds the lexicons: Python heap, resident memory, load
time.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from train_name_model import paramopama_texts  # noqa: E402

from compliance.redaction import lexicon, name_model, names  # noqa: E402
from compliance.redaction.corpus import load_corpus  # noqa: E402
from compliance.redaction.evaluation import (  # noqa: E402
    evaluate_real_text,
    evaluate_records,
    read_harem,
)

DEFAULT_NER = ROOT.parent / "shared" / "data" / "names" / "ner"


def _cased(records: list[dict], change) -> list[dict]:
    out = []
    for record in records:
        text = change(record["text"])
        if len(text) != len(record["text"]):
            continue  # a character whose case changes its length: offsets would move
        entities = [{**e, "value": change(e["value"])} for e in record["entities"]]
        out.append({**record, "text": text, "entities": entities})
    return out


def generated() -> None:
    records = load_corpus()
    for label, variant in (
        ("as written", records),
        ("ALL IN CAPITALS", _cased(records, str.upper)),
        ("all in lower case", _cased(records, str.lower)),
    ):
        report = evaluate_records(variant)
        nome = report.scores["NOME"]
        print(
            f"generated corpus, {label}: NOME {nome.found}/{nome.labelled} "
            f"({nome.recall:.4f}), name words {report.name_words_covered}/{report.name_words} "
            f"({report.name_word_recall:.4f}), clean sentences altered "
            f"{report.clean_altered}/{report.clean_total}"
        )


# What HAREM labels PESSOA besides a person's name (its subtypes are not in these
# files): offices and titles ("Presidente da Direcção", "Duque de Bragança"), groups,
# clubs, bands and newspapers, peoples ("os Mouros", "dos Bombeiros"). The words below
# were read off the misses on the tuning collections (First HAREM train and dev,
# Paramopama + Second HAREM), never off MiniHAREM.
_OFFICE_WORDS = frozenset(
    """
    presidente presidentes vice representante representantes secretario secretaria secretarios
    ministro ministros ministra governador governadora chefe superintendente almirante
    comandante comandantes provedor oficial socia socio director diretor directora diretora
    reitor procurador subprocurador imperador imperatriz rei rainha reis conde condessa duque
    duquesa condestavel marques visconde juiz juiza deputado deputados senador vereador
    embaixador consul gerente membros corpo corpos conselho assembleia comissao direccao
    direcao parlamento governo juri convencao administracao excelencia bispo cardeal
    """.split()
)
_GROUP_WORDS = frozenset(
    """
    grupo clube atletico desportivo futebol sporting banda associacao uniao coalition
    ensemble group project runners operacao diario jornal folha
    """.split()
)
_PLURAL_ARTICLES = frozenset("os dos aos pelos nos as das as pelas nas".split())
_PARTICLES = frozenset("de da do das dos".split())


def pessoa_kind(document_text: str, start: int, end: int) -> str:
    """"name", "office", "group" or "people": a rule-based reading of one PESSOA span."""
    words = re.findall(r"[^\W\d_]+", document_text[start:end])
    folded = [lexicon.fold(w).lower() for w in words]
    if any(w in _GROUP_WORDS for w in folded):
        return "group"
    offices = [k for k, w in enumerate(folded) if w in _OFFICE_WORDS]
    if offices:
        given = any(lexicon.flags_of(w) & lexicon.FIRST for w in words)
        described = any(k + 1 < len(folded) and folded[k + 1] in _PARTICLES for k in offices)
        if described or not given:
            return "office"
    if len(words) == 1 and words[0].endswith("s") and words[0][1:].islower():
        before = re.findall(r"[^\W\d_]+", document_text[max(0, start - 8) : start])
        if before and before[-1].lower() in _PLURAL_ARTICLES:
            return "people"
    return "name"


def _names_only(documents: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """The documents with only the PESSOA spans that read as a person's name kept as such."""
    kinds: dict[str, int] = {}
    out = []
    for document in documents:
        entities = []
        for e in document["entities"]:
            if e["label"] == "PESSOA":
                kind = pessoa_kind(document["doc_text"], e["start_offset"], e["end_offset"])
                kinds[kind] = kinds.get(kind, 0) + 1
                if kind != "name":
                    e = {**e, "label": "PESSOA_" + kind}
            entities.append(e)
        out.append({**document, "entities": entities})
    return out, kinds


def _real(label: str, documents: list[dict], *, as_session: bool = False,
          names_only: bool = False) -> None:
    started = time.process_time()
    score = evaluate_real_text(documents, as_session=as_session)
    print(
        f"{label}: {score.documents} documents, person-name words "
        f"{score.name_words_redacted}/{score.name_words} ({score.name_recall:.4f}), "
        f"other words kept {score.other_words_kept}/{score.other_words} "
        f"({score.other_kept:.4f}) [{time.process_time() - started:.1f} s]"
    )
    if names_only:
        kept, kinds = _names_only(documents)
        score = evaluate_real_text(kept, as_session=as_session)
        print(
            f"  PESSOA spans by kind: {kinds}; words of the spans read as names only: "
            f"{score.name_words_redacted}/{score.name_words} ({score.name_recall:.4f})"
        )


def paramopama_documents(ner: Path) -> list[dict]:
    path = ner / "paramopama_plus_second_harem.conll.gz"
    return [
        {
            "doc_id": str(k),
            "doc_text": text,
            "entities": [{"label": "PESSOA", "start_offset": s, "end_offset": e} for s, e in spans],
        }
        for k, (text, spans) in enumerate(paramopama_texts(path, held_out=True))
    ]


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory() -> None:
    lexicon.tables()  # already in every redacting process (benchmarks/name_lexicon_memory.py)
    gc.collect()
    before = _rss_bytes()
    started = time.perf_counter()
    model = name_model.model()
    lexicon.place_prefixes()
    elapsed = time.perf_counter() - started
    gc.collect()
    rss = _rss_bytes() - before
    tracemalloc.start()
    again = name_model.read_model()
    heap_model = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    tracemalloc.start()
    lexicon._prefixes.clear()
    lexicon.place_prefixes()
    heap_prefixes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert again.weights == model.weights
    size = name_model.MODEL_PATH.stat().st_size
    print(f"model: {len(model.weights):,} weights, {size:,} bytes on disk")
    print(
        f"Python heap held: model {heap_model / 2**20:.2f} MiB, "
        f"place prefixes {heap_prefixes / 2**20:.2f} MiB"
    )
    print(f"RSS growth (both, no tracemalloc): {rss / 2**20:.1f} MiB; load {elapsed * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ner-dir", type=Path, default=DEFAULT_NER)
    parser.add_argument("--test", action="store_true", help="also measure MiniHAREM")
    parser.add_argument("--no-model", action="store_true", help="second signal off")
    parser.add_argument("--memory", action="store_true", help="memory and load time only")
    parser.add_argument(
        "--session",
        action="store_true",
        help="real text: a document's paragraphs are the messages of one chat session",
    )
    parser.add_argument(
        "--kinds",
        action="store_true",
        help="real text: also the recall on the PESSOA spans that read as a person's name "
        "(offices, groups and peoples left out by `pessoa_kind`)",
    )
    args = parser.parse_args()
    if args.memory:
        memory()
        return 0
    if args.no_model:
        names.SECOND_SIGNAL = None
    print("second signal:", "off" if args.no_model else "on")
    generated()
    ner = args.ner_dir
    options = {"as_session": args.session, "names_only": args.kinds}
    if args.session:
        print("real text: each document is one chat session")
    _real("First HAREM dev", read_harem(ner / "harem_FirstHAREM-total-dev.json.gz"), **options)
    if args.kinds:
        _real(
            "First HAREM train",
            read_harem(ner / "harem_FirstHAREM-total-train.json.gz"),
            **options,
        )
    _real("Paramopama + Second HAREM, held-out tenth", paramopama_documents(ner), **options)
    if args.test:
        _real("MiniHAREM (test)", read_harem(ner / "harem_MiniHAREM-total.json.gz"), **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
