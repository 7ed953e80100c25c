"""The demo's email backend: each email to a file under EMAIL_FILE_PATH, and one line about it.

`make run` uses it (config/settings/local.py), so the terminal shows that an email went out
without printing its whole body, and the email itself can be opened from var/emails/.
"""

import logging
import os
from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.filebased import EmailBackend

logger = logging.getLogger(__name__)
NOTICE_KIND_HEADER = "X-Billing-Notice-Kind"


class DemoFileEmailBackend(EmailBackend):
    """Django's file-based backend, logging one line per email sent: kind, recipient, subject."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = super().send_messages(email_messages)
        if sent:
            for message in email_messages:
                kind = message.extra_headers.get(NOTICE_KIND_HEADER, "email")
                # The subject as written, not as MIME-encoded in the file (Russian subjects).
                written = getattr(self, "_fname", None)  # Django's file of this connection
                where = os.path.relpath(written) if written else "-"
                logger.info("email %s to %s: %s (%s)", kind, ", ".join(message.to), message.subject, where)
        return sent
