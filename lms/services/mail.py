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
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
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


_PLACEHOLDER = "LMSTOKENPLACEHOLDER"


def link_maker(endpoint: str) -> Callable[[str], str]:
    """public_url for many tokens of one route: the URL is built once (a batch of 50,000
    mails pays for one request context, not one each)."""
    template = public_url(endpoint, token=_PLACEHOLDER)
    return lambda token: template.replace(_PLACEHOLDER, token)


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


@contextmanager
def parallel(connections: int) -> Iterator[Callable[[list[Any]], list[Outcome | Exception]]]:
    """send_all(messages): each message over one of `connections` SMTP connections used in
    parallel (a mail server answers each command after a round trip: one connection waits
    most of the time). Returns each message's Outcome, or the exception that stopped it,
    in the messages' order. The connections close when the block ends."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    local = threading.local()
    opened: list[BaseEmailBackend] = []
    lock = threading.Lock()

    def send_one(message: Any) -> Outcome:
        with app.app_context():
            backend = getattr(local, "backend", None)
            if backend is None:
                backend = mail.get_connection(fail_silently=False)
                with lock:
                    opened.append(backend)
                backend.open()
                local.backend = backend
            return send(backend, message)

    def send_all(messages: list[Any]) -> list[Outcome | Exception]:
        results: list[Outcome | Exception] = []
        for future in [pool.submit(send_one, m) for m in messages]:
            try:
                results.append(future.result())
            except Exception as e:  # noqa: BLE001 - reported per message to the caller
                results.append(e)
        return results

    with ThreadPoolExecutor(max_workers=max(1, connections), thread_name_prefix="smtp") as pool:
        try:
            yield send_all
        finally:
            pool.shutdown(wait=True)
            for backend in opened:
                try:
                    backend.close()
                except Exception:  # noqa: BLE001 - a connection already gone
                    log.debug("closing an SMTP connection failed", exc_info=True)


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


def _text(reason: bytes | str) -> str:
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
