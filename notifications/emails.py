"""Render a notice as an email, plain text and HTML, in the viewer's language (English by default).

Templates live in templates/emails/<language>/<kind>.{subject.txt,txt,html}; a language
without a template falls back to English.
"""

import re
from dataclasses import dataclass
from typing import Any

from django.template.loader import select_template
from django.utils import translation

from notifications.models import Notice

LANGUAGES = ("en", "ru")
FALLBACK_LANGUAGE = "en"


@dataclass(frozen=True)
class RenderedEmail:
    language: str
    subject: str
    text: str
    html: str


def email_language(language: str | None) -> str:
    """Return the language an account's emails are written in."""
    code = (language or "").lower()[:2]
    return code if code in LANGUAGES else FALLBACK_LANGUAGE


def _render(kind: str, language: str, suffix: str, context: dict[str, Any]) -> str:
    names = [f"emails/{language}/{kind}.{suffix}", f"emails/{FALLBACK_LANGUAGE}/{kind}.{suffix}"]
    return select_template(names).render(context)


def notice_render(notice: Notice, *, language: str, extra: dict[str, Any] | None = None) -> RenderedEmail:
    """Return the email of a notice, written from the facts recorded with it (and `extra`)."""
    language = email_language(language)
    context = {**notice.context, **(extra or {}), "kind": notice.kind, "language": language}
    with translation.override(language):
        # One line, without touching the no-break spaces inside amounts.
        subject = re.sub(r"[ \t\r\n]+", " ", _render(notice.kind, language, "subject.txt", context)).strip()
        text = _render(notice.kind, language, "txt", context).strip() + "\n"
        html = _render(notice.kind, language, "html", {**context, "subject": subject})
    return RenderedEmail(language=language, subject=subject, text=text, html=html)
