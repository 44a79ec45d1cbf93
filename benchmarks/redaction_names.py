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


def _real(label: str, documents: list[dict]) -> None:
    started = time.process_time()
    score = evaluate_real_text(documents)
    print(
        f"{label}: {score.documents} documents, person-name words "
        f"{score.name_words_redacted}/{score.name_words} ({score.name_recall:.4f}), "
        f"other words kept {score.other_words_kept}/{score.other_words} "
        f"({score.other_kept:.4f}) [{time.process_time() - started:.1f} s]"
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
    args = parser.parse_args()
    if args.memory:
        memory()
        return 0
    if args.no_model:
        names.SECOND_SIGNAL = None
    print("second signal:", "off" if args.no_model else "on")
    generated()
    ner = args.ner_dir
    _real("First HAREM dev", read_harem(ner / "harem_FirstHAREM-total-dev.json.gz"))
    _real("Paramopama + Second HAREM, held-out tenth", paramopama_documents(ner))
    if args.test:
        _real("MiniHAREM (test)", read_harem(ner / "harem_MiniHAREM-total.json.gz"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
