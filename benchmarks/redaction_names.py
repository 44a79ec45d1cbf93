"""Person-name recognition figures, with and without the statistical second signal.

    python benchmarks/redaction_names.py [--ner-dir ../shared/data/names/ner] [--test]
                                         [--no-model]

Reports, word by word and entity by entity:

- the generated corpus (`compliance/redaction/data/corpus.jsonl`) as written, typed
  ALL IN CAPITALS and all in lower case: NOME recall, name-word recall, clean
  sentences altered;
- the tuning collections: First HAREM dev, and the tenth of Paramopama + Second
  HAREM that `scripts/train_name_model.py` holds out;
- with `--test`, MiniHAREM, the test collection (measure only: never tune on it).

`--no-model` turns the second signal off, to show what it adds. The HAREM and
Paramopama files are not shipped; they are read from `--ner-dir`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from train_name_model import paramopama_texts  # noqa: E402

from compliance.redaction import names  # noqa: E402
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ner-dir", type=Path, default=DEFAULT_NER)
    parser.add_argument("--test", action="store_true", help="also measure MiniHAREM")
    parser.add_argument("--no-model", action="store_true", help="second signal off")
    args = parser.parse_args()
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
