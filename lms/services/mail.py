"""Outgoing email through Flask-Mailman, set up from LMS_SMTP_URL.

- `smtp://host:port` (plain; add `?starttls=1` to upgrade with STARTTLS),
  `smtps://user:password@host:465` (TLS from the start). User and password are URL-quoted.
- empty: every message is written to a file under LMS_MAIL_DIR (default instance/mail), and
  a line in the log names the file, so `make run` shows its demo mails without a server.

Messages are written from templates/mail/<name>.txt and .html in the recipient's language;
links in them start with LMS_PUBLIC_URL (the site's address as people reach it), never with
a Host header a client sent.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from flask_mailman import EmailMultiAlternatives
from flask_mailman.backends.base import BaseEmailBackend

from lms.extensions import mail

log = logging.getLogger(__name__)


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute link for a mail or a file handed out: LMS_PUBLIC_URL and the route."""
    base = str(current_app.config["PUBLIC_URL"]).rstrip("/")
    with current_app.test_request_context(base_url=base + "/"):
        return url_for(endpoint, _external=True, **values)


@dataclass(frozen=True)
class Outcome:
    sent: bool
    # The SMTP server refused the recipient: its code and words (a bounce we can show).
    refused: str | None = None


def compose(template: str, to: str, locale: str | None, **context: Any) -> EmailMultiAlternatives:
    """A message from templates/mail/<template>.txt (its first line is the subject) and
    .html, in the recipient's language."""
    with force_locale(locale or current_app.config["BABEL_DEFAULT_LOCALE"]):
        subject, _sep, text = render_template(f"mail/{template}.txt", **context).partition("\n")
        html = render_template(f"mail/{template}.html", subject=subject, **context)
    message = EmailMultiAlternatives(
        subject=subject.strip(), body=text.lstrip("\n"), from_email=None, to=[to]
    )
    message.attach_alternative(html, "text/html")
    return message


@contextmanager
def connection() -> Iterator[BaseEmailBackend]:
    """One open connection for many messages (a batch pays for the SMTP handshake once)."""
    backend = mail.get_connection(fail_silently=False)
    backend.open()
    try:
        yield backend
    finally:
        backend.close()


def send(backend: BaseEmailBackend, message: EmailMultiAlternatives) -> Outcome:
    """Hand one message to the server. A refused recipient is an outcome (a bounce); any
    other failure (server gone, bad login) raises, since later messages would fail too."""
    try:
        backend.send_messages([message])
    except smtplib.SMTPRecipientsRefused as e:
        code, reason = next(iter(e.recipients.values()))
        return Outcome(False, refused=f"{code} {_text(reason)}"[:300])
    except smtplib.SMTPResponseException as e:
        if 500 <= e.smtp_code < 600 and e.smtp_code != 530:  # permanent: this message only
            return Outcome(False, refused=f"{e.smtp_code} {_text(e.smtp_error)}"[:300])
        raise
    if current_app.config["MAIL_BACKEND"] == "file":
        written = getattr(backend, "_fname", None)
        log.info("mail to %s written to %s", message.to[0], written)
    return Outcome(True)


def mail_dir() -> Path:
    return Path(current_app.config["MAIL_DIR"])


def _text(reason: bytes | str) -> str:
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
