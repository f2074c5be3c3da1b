"""The learner of an extension, picked by typing part of a name or an email: the suggestions a
search field offers (a server-rendered <datalist>, or a small JSON answer for a large cohort),
and what the server makes of the text sent. Only the cohort's own learners are ever found:
anyone else is answered as not matching."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _

from lms.models import Cohort, User
from lms.queries import insight, learner_search

# Up to this many learners the page lists them all in its <datalist> (121 in a demo cohort);
# beyond it the field asks the server as one types (lms/static/extensions.js).
DATALIST_MAX = 500
SUGGESTIONS = 20
SHOWN_IN_ERROR = 5
MIN_QUERY = 2
# "Ann Lee <ann@example.org>", as the old list and the suggestions show a learner.
EMAIL_IN_BRACKETS = re.compile(r"<\s*([^<>\s]+@[^<>\s]+)\s*>\s*$")


@dataclass(frozen=True)
class Picked:
    """The learner found, or why none was."""

    learner: User | None
    error: str = ""


def options(cohort: Cohort) -> list[User] | None:
    """Every learner of the cohort for the page's <datalist>; None when there are too many
    (the field then asks for suggestions as one types)."""
    if learner_search.learner_count(cohort.id) > DATALIST_MAX:
        return None
    return list(insight.cohort_learners(cohort))


def suggestions(cohort: Cohort, text: str) -> dict[str, Any]:
    """The JSON answer for the typed text: a few learners of the cohort matching it."""
    if len(text.strip()) < MIN_QUERY:
        return {"learners": [], "more": False}
    found = learner_search.matching(cohort.id, text, SUGGESTIONS + 1)
    return {
        "learners": [{"name": u.name, "email": u.email} for u in found[:SUGGESTIONS]],
        "more": len(found) > SUGGESTIONS,
    }


def pick(cohort: Cohort, text: str) -> Picked:
    """The one learner of the cohort the text names: an email (alone or in brackets after the
    name), else the only learner whose name or email contains it (or whose whole name it is)."""
    text = text.strip()
    bracketed = EMAIL_IN_BRACKETS.search(text)
    email = bracketed.group(1) if bracketed else text
    if "@" in email:
        found = learner_search.by_email(cohort.id, email)
        if found is not None:
            return Picked(found)
    matches = learner_search.matching(cohort.id, text, SHOWN_IN_ERROR + 1)
    if len(matches) == 1:
        return Picked(matches[0])
    whole = [u for u in matches if text.casefold() in (u.name.casefold(), u.email.casefold())]
    if len(whole) == 1:
        return Picked(whole[0])
    if not matches:
        return Picked(
            None,
            _(
                "No learner of %(cohort)s matches “%(text)s”. Type part of the name or the "
                "email of one of its learners.",
                cohort=cohort.name,
                text=text,
            ),
        )
    shown = ", ".join(f"{u.name} <{u.email}>" for u in matches[:SHOWN_IN_ERROR])
    if len(matches) > SHOWN_IN_ERROR:
        shown += ", …"
    return Picked(
        None,
        _(
            "Several learners of %(cohort)s match “%(text)s”: %(learners)s. Type more of the "
            "name, or the email.",
            cohort=cohort.name,
            text=text,
            learners=shown,
        ),
    )
