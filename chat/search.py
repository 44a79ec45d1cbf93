"""Search over a clinician's own sessions without decrypting anything.

Titles and messages are encrypted at rest, so the database cannot search their
text, and decrypting every message of a clinician with 1,000 sessions on each
search would be slow and would touch far more personal data than the search
needs. Instead each session carries `search_tokens`: for every word of its
title and of its *redacted* messages (what left for the provider: personal data
already replaced by markers), a keyed hash of the word. A search hashes the
words typed and asks PostgreSQL for the sessions whose tokens contain them all
(each as a whole space-delimited entry of the text column: portable to the
embedded SQLite, and a scan of one clinician's rows only, found by the
(user, created_at) index).

The key is derived from SECRET_KEY and the owner's id, so the same word gives a
different token for every clinician: tokens say nothing across accounts, and
without the key they cannot be reversed by hashing a dictionary. Words match
whole, without case or accents. Rotating SECRET_KEY needs
`session_reindex_for_search` over the sessions to make old ones findable again.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from collections.abc import Iterable

from django.utils.crypto import salted_hmac

# Bounds: tokens are hashes of words, so a session's vocabulary, not its length,
# decides its size; very short words are too common to be worth a token.
MIN_WORD_CHARS = 2
MAX_QUERY_WORDS = 8
TOKEN_CHARS = 16

_WORD_RE = re.compile(r"\w+", re.UNICODE)


def normalise_words(text: str) -> list[str]:
    """The words of `text`, lower-cased and without accents, in order, once each."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in folded if not unicodedata.combining(char))
    seen: dict[str, None] = {}
    for word in _WORD_RE.findall(plain):
        if len(word) >= MIN_WORD_CHARS:
            seen.setdefault(word, None)
    return list(seen)


def _owner_hmac(user_id: int) -> hmac.HMAC:
    """The owner's keyed hash before any word: `salted_hmac` derives its key from the
    salt and SECRET_KEY on every call; a copy of this one hashes a word the same way
    without deriving it again."""
    return salted_hmac(f"neonpro.chat.search:{user_id}", b"", algorithm="sha256")


def _token(owner: hmac.HMAC, word: str) -> str:
    digest = owner.copy()
    digest.update(word.encode())
    return digest.hexdigest()[:TOKEN_CHARS]


def word_token(*, user_id: int, word: str) -> str:
    """The keyed hash of one normalised word for one owner."""
    return _token(_owner_hmac(user_id), word)


def tokens_for_texts(*, user_id: int, texts: Iterable[str]) -> list[str]:
    """The distinct tokens of every word of `texts` (redacted text or titles only)."""
    words: dict[str, None] = {}
    for text in texts:
        for word in normalise_words(text or ""):
            words.setdefault(word, None)
    owner = _owner_hmac(user_id)
    return sorted({_token(owner, word) for word in words})


def pack(tokens: Iterable[str]) -> str:
    """The column value for a set of tokens: sorted, space-separated, spaces at both ends
    so that every token, first and last included, is matched as " token "."""
    unique = sorted(set(tokens))
    return f" {' '.join(unique)} " if unique else ""


def unpack(value: str) -> set[str]:
    return set((value or "").split())


def tokens_for_query(*, user_id: int, query: str) -> list[str]:
    """The tokens a session must all carry to match `query` (empty: nothing to search)."""
    words = normalise_words(query)[:MAX_QUERY_WORDS]
    owner = _owner_hmac(user_id)
    return [_token(owner, word) for word in words]
