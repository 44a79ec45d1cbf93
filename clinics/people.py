"""How the back-office names people: "Maria S." rather than a numeric id.

Officers must recognise whom an event or request is about, but a screen should
show no more of a person than it needs to: the first name and the initial of
the surname, and the username only when the profile has no name. Audit events
keep plain ids (a person's erasure must not cascade into the trail), so lists
resolve ids to labels here, in one query per page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.utils import formats, timezone


def person_short_name(user) -> str:
    """"Maria S." for Maria Souza; the username when no name is on file."""
    if user is None:
        return "—"
    first = (user.first_name or "").strip().split(" ")[0]
    last = (user.last_name or "").strip()
    if first and last:
        return f"{first} {last[0].upper()}."
    return first or user.get_username()


@dataclass(frozen=True)
class PersonLabel:
    name: str
    clinic: str | None

    def __str__(self) -> str:
        return f"{self.name} ({self.clinic})" if self.clinic else self.name


def people_labels(*, user_ids: Iterable[int | None]) -> dict[int, PersonLabel]:
    """user id -> name and clinic, for every id that still names a user."""
    ids = {pk for pk in user_ids if pk is not None}
    if not ids:
        return {}
    users = (get_user_model().objects.filter(pk__in=ids)
             .select_related("clinic_membership__clinic"))
    labels = {}
    for user in users:
        membership = getattr(user, "clinic_membership", None)
        labels[user.pk] = PersonLabel(
            name=person_short_name(user),
            clinic=membership.clinic.name if membership is not None else None,
        )
    return labels


def short_date(value: datetime | None) -> str:
    """03/12/2026 in the active language, in the project's time zone."""
    if value is None:
        return "—"
    return formats.date_format(timezone.localtime(value), "SHORT_DATE_FORMAT")


def short_datetime(value: datetime | None) -> str:
    if value is None:
        return "—"
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


def people_search(*, term: str, limit: int = 50) -> list[int]:
    """Ids of the users whose name, username or e-mail contains `term` (or all its words).

    The term is personal data: callers take it from a POST body and put only the
    ids in URLs, never the term itself, so that it reaches no log.
    """
    from django.db.models import Q

    words = [word for word in term.split() if word]
    if not words:
        return []
    query = Q(email__iexact=term) | Q(username__icontains=term)
    by_name = Q()
    for word in words:
        by_name &= Q(first_name__icontains=word) | Q(last_name__icontains=word)
    return list(get_user_model().objects.filter(query | by_name).order_by("pk")
                .values_list("pk", flat=True)[:limit])
