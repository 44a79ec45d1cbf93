"""A conversation exported by its clinician, as Markdown or PDF.

The export holds the conversation as the clinician sees it in the chat, personal
data included (re-identified answers, questions as typed): it is a data export
of the clinician's own data and is audited like one (a data_exported event,
written before anything is delivered; if it cannot be written, nothing is).
PDFs are built with fpdf2 (pure Python) from the same text, with a standard
font: characters it cannot draw (emoji) are replaced rather than dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import selectors
from chat.errors import ChatError
from chat.models import ChatMessage, ChatSession
from compliance import audit

FORMATS = ("md", "pdf")

# Typographic characters the PDF's standard font lacks, and what stands in for them.
_PDF_REPLACEMENTS = str.maketrans({
    "…": "...", "—": "-", "–": "-", "“": '"', "”": '"', "‘": "'", "’": "'", "•": "-",
    "\u00a0": " ", "→": "->", "✓": "v",
})


@dataclass(frozen=True)
class ExportFile:
    filename: str
    content_type: str
    body: bytes


def _local(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%d/%m/%Y %H:%M")


def _title(session: ChatSession) -> str:
    return session.title or _("Session of %(date)s") % {"date": _local(session.created_at)}


def _author(message: ChatMessage) -> str:
    return _("You") if message.role == ChatMessage.Role.USER else _("Assistant")


def _markdown(session: ChatSession, messages: list[ChatMessage], now: datetime) -> str:
    lines = [
        f"# {_title(session)}",
        "",
        _("Exported on %(now)s · session started %(created)s · last activity %(last)s") % {
            "now": _local(now), "created": _local(session.created_at),
            "last": _local(session.last_activity_at)},
        "",
    ]
    for message in messages:
        lines += [f"## {_author(message)} · {_local(message.created_at)}", "", message.content
                  or "—", ""]
    return "\n".join(lines)


def _pdf_text(text: str) -> str:
    return text.translate(_PDF_REPLACEMENTS).encode("latin-1", "replace").decode("latin-1")


def _pdf(markdown_text: str) -> bytes:
    from fpdf import FPDF  # imported here: only exports need it

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(_pdf_text(markdown_text.splitlines()[0].lstrip("# ")))
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for line in markdown_text.splitlines():
        heading = re.match(r"^(#{1,2}) (.*)$", line)
        if heading:
            size = 16 if heading.group(1) == "#" else 11
            pdf.set_font("Helvetica", "B", size)
            pdf.multi_cell(width, size * 0.55, _pdf_text(heading.group(2)),
                           new_x="LMARGIN", new_y="NEXT")
            continue
        pdf.set_font("Courier" if line.startswith("    ") else "Helvetica", "", 10)
        pdf.multi_cell(width, 5, _pdf_text(line) or " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def session_export(*, user, session_id, export_format: str) -> ExportFile:
    """One of the user's sessions as a file, after recording the export in the audit trail."""
    if export_format not in FORMATS:
        raise ChatError("invalid", "as must be 'md' or 'pdf'.")
    now = timezone.now()
    with transaction.atomic():
        session = selectors.session_get_for_user(user=user, session_id=session_id)
        messages = list(session.messages.exclude(content="").order_by("created_at"))
        audit.record_event(
            event_type=audit.Event.DATA_EXPORTED, actor_id=user.pk, subject_user_id=user.pk,
            clinic_id=session.clinic_id, session_id=session.id,
            metadata={"scope": "session", "format": export_format, "messages": len(messages)},
        )
    text = _markdown(session, messages, now)
    stamp = timezone.localtime(now).strftime("%Y%m%d-%H%M")
    filename = f"neonpro-conversa-{stamp}.{export_format}"
    if export_format == "md":
        return ExportFile(filename, "text/markdown; charset=utf-8", text.encode("utf-8"))
    return ExportFile(filename, "application/pdf", _pdf(text))

