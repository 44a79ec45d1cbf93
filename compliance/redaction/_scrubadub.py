"""The single place where scrubadub is imported.

scrubadub's package `__init__` imports all of its English detectors, and two
of them (Skype, TextBlob names) import nltk and textblob at module level, which
pull in scipy and scikit-learn: seconds of start-up and ~150 MB per process
for detectors this project removes. When nltk/textblob are not loaded yet,
they are replaced by inert placeholders for the duration of that import only;
the placeholders are then taken out of `sys.modules`, so any later
`import nltk` elsewhere gets the real package. The English detectors keep
references to the placeholders and must not be used (the engine never loads
them: `BrazilianScrubber` passes its own detector list).
"""

from __future__ import annotations

import sys
import types


class _Inert:
    """Stands for the textblob classes scrubadub touches while importing."""

    pos_tagger = None

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError("scrubadub's English NLP detectors are disabled in this project")


def _placeholders() -> dict[str, types.ModuleType]:
    modules = {
        name: types.ModuleType(name)
        for name in (
            "nltk",
            "textblob",
            "textblob.blob",
            "textblob.en",
            "textblob.en.taggers",
        )
    }
    modules["textblob.blob"].BaseBlob = _Inert  # type: ignore[attr-defined]
    modules["textblob.en.taggers"].PatternTagger = lambda: None  # type: ignore[attr-defined]
    modules["textblob"].blob = modules["textblob.blob"]  # type: ignore[attr-defined]
    modules["textblob"].en = modules["textblob.en"]  # type: ignore[attr-defined]
    modules["textblob.en"].taggers = modules["textblob.en.taggers"]  # type: ignore[attr-defined]
    return modules


def _load() -> types.ModuleType:
    if "scrubadub" in sys.modules:
        return sys.modules["scrubadub"]
    placeholders: dict[str, types.ModuleType] = {}
    if "nltk" not in sys.modules and "textblob" not in sys.modules:
        placeholders = _placeholders()
        sys.modules.update(placeholders)
    try:
        import scrubadub
    finally:
        for name, module in placeholders.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return scrubadub


scrubadub = _load()
