"""The fonts of every PDF the LMS writes (certificates, progress reports).

Text is set in DejaVu Sans, read from matplotlib's own font folder (no system font needed),
which covers Latin and Vietnamese. When a CJK font is installed on the system (fonts-nanum,
fonts-noto-cjk, fonts-unfonts-core or fonts-baekmuk on Debian; the Dockerfile installs
fonts-nanum) it is the fallback for the glyphs DejaVu lacks; without one, Korean, Chinese and
Japanese characters are left out of PDFs (pages show them; fpdf2 logs the missing glyphs).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fpdf import FPDF

# fontTools reports every font table it leaves out of a subset (Nanum's TSI*: hinting sources).
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)

FAMILY = "DejaVu"
FALLBACK = "CJK"
# (path, face index in a collection); the first that exists is used.
CJK_FONTS = (
    ("/usr/share/fonts/truetype/nanum/NanumGothic.ttf", 0),
    ("/usr/share/fonts/truetype/nanum/NanumBarunGothic.ttf", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 1),  # face 1: Korean
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 1),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 1),
    ("/usr/share/fonts/truetype/unfonts-core/UnDotum.ttf", 0),
    ("/usr/share/fonts/truetype/baekmuk/dotum.ttf", 0),
)


def dejavu_dir() -> Path:
    """matplotlib's bundled TrueType folder (found without importing matplotlib)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib (which ships the DejaVu fonts) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


@functools.cache
def cjk_font() -> tuple[str, int] | None:
    """The system CJK font used as fallback, or None when there is none."""
    return next(((path, face) for path, face in CJK_FONTS if Path(path).is_file()), None)


def add_fonts(pdf: FPDF, fallback: bool = True) -> None:
    """DejaVu Sans (regular and bold) as FAMILY, and the CJK fallback when asked and found."""
    fonts = dejavu_dir()
    pdf.add_font(FAMILY, "", fonts / "DejaVuSans.ttf")
    pdf.add_font(FAMILY, "B", fonts / "DejaVuSans-Bold.ttf")
    found = cjk_font() if fallback else None
    if found is not None:
        path, face = found
        pdf.add_font(FALLBACK, "", path, collection_font_number=face)
        pdf.add_font(FALLBACK, "B", path, collection_font_number=face)
        pdf.set_fallback_fonts([FALLBACK], exact_match=False)
