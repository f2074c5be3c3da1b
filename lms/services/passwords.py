"""The password rule people meet when they choose one (NIST SP 800-63B, section 5.1.1.2).

At least 12 characters (Unicode, counted after NFKC normalisation), at most 1024, no rules on
which kinds of characters, and not guessable: zxcvbn matches it against the lists it ships
(30,000 common passwords, English words, names) and against keyboard walks, repeats,
sequences, dates and the person's own email and name; fewer than 10^8 estimated guesses
(zxcvbn score below 3) is refused. The message says why without echoing the password.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from flask_babel import gettext as _
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 12
MAX_LENGTH = 1024
# zxcvbn refuses longer input (its cost grows with length); a 72-character prefix of a
# password is already far beyond any guessing budget when it is itself strong.
_ZXCVBN_MAX = 72
MIN_SCORE = 3

_COMMON = frozenset(FREQUENCY_LISTS["passwords"])


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def problem(password: str, user_inputs: Iterable[str] = ()) -> str | None:
    """Why this password may not be chosen (translated), or None when it may."""
    password = normalize(password)
    if len(password) < MIN_LENGTH:
        return str(_("Use at least %(num)d characters.", num=MIN_LENGTH))
    if len(password) > MAX_LENGTH:
        return str(_("Use at most %(num)d characters.", num=MAX_LENGTH))
    if password.lower() in _COMMON:
        return str(_("This is one of the most common passwords. Choose another."))
    inputs = [part for text in user_inputs for part in _parts(text)]
    if zxcvbn(password[:_ZXCVBN_MAX], user_inputs=inputs)["score"] < MIN_SCORE:
        return str(
            _(
                "This password is too easy to guess (a common password or word, a keyboard "
                "pattern, a repeat, or your own name or email). A few unrelated words make a "
                "strong one."
            )
        )
    return None


def _parts(text: str) -> list[str]:
    """The text and its pieces: an email's local part and domain words, a name's words."""
    text = text.strip().lower()
    if not text:
        return []
    pieces = [text]
    local, _at, domain = text.partition("@")
    pieces.append(local)
    for sep in (".", "-", "_", " ", "+"):
        local = local.replace(sep, " ")
        domain = domain.replace(sep, " ")
    pieces += [w for w in (local.split() + domain.split()) if len(w) >= 3]
    return pieces
