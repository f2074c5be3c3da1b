"""The AI Engineer track in courses/: complete and valid. (check-courses, run by make test,
grades every notebook with stock nbgrader; these checks need no kernel.)"""

from __future__ import annotations

from pathlib import Path

from lms.services import catalog

COURSES = Path(__file__).resolve().parents[2] / "courses"


def test_the_track_loads_without_problems() -> None:
    courses, problems = catalog.load(COURSES)
    assert problems == []
    assert len(courses) >= 4
    assert sum(len(c.assignments) for c in courses) >= 12


def test_demo_course_slugs_are_the_track() -> None:
    from lms.services.demo import COURSES as DEMO_COURSES

    courses, _ = catalog.load(COURSES)
    assert {slug for slug, _ in DEMO_COURSES} <= {c.slug for c in courses}


def test_every_course_has_a_written_answer_and_the_gpu_labs_are_marked() -> None:
    courses, _ = catalog.load(COURSES)
    for course in courses:
        kinds = {c.kind for a in course.assignments for cells in a.notebooks.values() for c in cells}
        assert kinds == {"autograded", "manual"}, course.slug
    gpu = [a.slug for c in courses for a in c.assignments if a.gpu]
    assert gpu, "the deep-learning labs are marked gpu = true"


def test_notebooks_download_nothing() -> None:
    for notebook in COURSES.glob("*/*/*.ipynb"):
        text = notebook.read_text()
        for forbidden in ("fetch_openml", "fetch_california", "urlopen", "requests.get", "wget ",
                          "download=True", "hf_hub"):
            assert forbidden not in text, f"{notebook}: {forbidden}"


def test_every_test_cell_checks_types_not_only_values() -> None:
    """An object whose == is always True must not pass: each test asserts a type or dtype."""
    import json

    for notebook in COURSES.glob("*/*/*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                source = "".join(cell["source"])
                assert any(check in source for check in ("isinstance(", "type(", ".dtype")), (
                    f"{notebook.name}: {meta['grade_id']} compares values without a type check"
                )
