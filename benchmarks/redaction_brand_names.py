"""Aesthetic-clinic brand and device names the name detector takes for a person.

    python benchmarks/redaction_brand_names.py [--no-model] [--treatment]

A precision check of the name rules and their statistical second signal on the
vocabulary of the clinics this product serves: fillers, toxins, lasers and
energy devices, skin-care lines and their makers. The names were written for
this check from the trade's vocabulary, not from any corpus the rules or the
model were tuned on, and they are not in the shipped lists. Adding them to
`stopwords.txt` would silence this check, not fix the cause (a capitalised word
no list knows reads as a name to a model trained on news text); measure a fix
on other brand names.

Each name goes into four clinical sentences; the script prints how many names
and sentences get a NOME placeholder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compliance.redaction import detect_entities, names  # noqa: E402

BRANDS = """
Vichy Cetaphil Effaclar Eucerin Hyalu Kinetin Cicaplast Anthelios Thermage Hydrafacial
Morpheus Lavieen Radiesse Dysport Xeomin Belotero Teosyal Profhilo Sculptra Restylane
Fotona Sciton Cynosure Lutronic Alma Emsculpt Kybella Zeltiq Harmonyca Ellansé Rennova
Bellotero Photona Tixel Pixel Sofwave Exilis Venus Accent Thermi Spectra Clear Brilliant
Fraxel Halo Picoway PicoSure Nordlys Lumecca Hydrogloss Nutriderm Neostrata Skinvive
Revance Daxxify Jeuveau Letybo Relfydess Qwo Sunmax Episol Photoderm Nivea Dove Johnson
Hipoglós Bepantol Weleda Granado Payot Ricca Tracta Darrow Mantecorp Theraskin Galderma
Allergan Merz Ipsen Sinclair Teoxane Croma Fillmed Kylane Hyaluronidase Hylenex
Hialuronidase Lidocaína
""".split()

TEMPLATES = (
    "Apliquei {} na região frontal hoje.",
    "{} aplicado na região frontal.",
    "Usar {} 2x ao dia e retornar.",
    "Indicado o protocolo com {} e retorno em 30 dias.",
)

# `--treatment`: other brand and device names, in sentences where a treatment noun and a
# preposition come before them (the gate of `names._treatment_context`), written when
# that gate was; the two lists share no name (the templates name three of the first).
TREATMENT_BRANDS = """
Ultraformer Emface Volnewmer Renuvion Rejuran Elleva Plinest Lumenis Candela Cutera Deka
Quanta Asclepion Agnes Vivace Infini Sylfirm Endymed Potenza Genius Secret Onda Coolfase
Hyalo Voluma Volite Stylage Saypha Revanesse Algeness Nctf Belafill Hyalmass Biogelis
Juvelook Gouri Miracu Aptos Silhouette Ellanse Dermapen Mesoestetic Isdin Avene Bioderma
Neutrogena
""".split()

TREATMENT_TEMPLATES = (
    "Indicado o protocolo com {} e retorno em 30 dias.",
    "Associado ao {} na mesma sessão.",
    "Fizemos 3 sessões de {} no abdome.",
    "Tratamento com {} e depois com Sculptra.",
    "Protocolo combinado com {}, Tixel e Lumecca.",
    "Resultado do {} foi ótimo.",
    "Aplicação de {} em 2 pontos.",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-model", action="store_true", help="second signal off")
    parser.add_argument(
        "--treatment",
        action="store_true",
        help="the other list, after treatment nouns and prepositions",
    )
    args = parser.parse_args()
    if args.no_model:
        names.SECOND_SIGNAL = None
    brands, templates = (
        (TREATMENT_BRANDS, TREATMENT_TEMPLATES) if args.treatment else (BRANDS, TEMPLATES)
    )
    taken: set[str] = set()
    altered = 0
    for brand in brands:
        for template in templates:
            if any(e.entity == "NOME" for e in detect_entities(template.format(brand))):
                taken.add(brand)
                altered += 1
    print("second signal:", "off" if args.no_model else "on")
    print(
        f"brand and device names taken for a person: {len(taken)} of {len(brands)}; "
        f"sentences altered: {altered} of {len(brands) * len(templates)}"
    )
    print("  " + " ".join(sorted(taken)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
