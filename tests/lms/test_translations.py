"""Every user-visible string is in Vietnamese and Korean: the strings the code marks for
translation today (extracted afresh, as `make messages` does) each have a translation in both
catalogues, none fuzzy, with the same placeholders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    pot = tmp_path_factory.mktemp("messages") / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg"]
        + ["-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "--no-location", "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as f:
        return read_po(f)


@pytest.mark.parametrize("language", ["vi", "ko"])
def test_every_marked_string_is_translated(extracted: Catalog, language: str) -> None:
    with (ROOT / "lms" / "translations" / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=language)
    problems = []
    for message in extracted:
        if not message.id:
            continue
        found = catalog.get(message.id)
        key = str(message.id[0] if isinstance(message.id, tuple) else message.id)
        strings = found.string if found else None
        texts = [str(t or "") for t in (strings if isinstance(strings, tuple) else [strings])]
        if found is None or not all(texts):
            problems.append(f"untranslated: {key!r}")
        elif found.fuzzy:
            problems.append(f"fuzzy: {key!r}")
        elif any(set(PLACEHOLDER.findall(t)) != set(PLACEHOLDER.findall(key)) for t in texts):
            problems.append(f"placeholders differ: {key!r}")
    assert not problems, (
        f"{len(problems)} problems in {language} (run make messages, then translate):\n"
        + "\n".join(problems[:40])
    )
