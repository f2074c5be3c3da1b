"""The instructor's grading pages: submissions per assignment and cohort, autograding batches
with a live progress bar, grading by hand question by question or learner by learner, and the
audit trail of every grade.

Learner work is shown as text: code and outputs are escaped by the templates, written answers
(Markdown) are rendered and sanitized by lms.instructor.answers, and the feedback HTML is served
with a policy that lets it run nothing.

Over 400 lines on purpose: the pages of one workflow (batches, grading by hand, history)
share the same lookups and forms; apart, each module would import the others'.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from markupsafe import Markup

from lms import feedback_page
from lms.extensions import db
from lms.instructor import answers
from lms.instructor.forms import (
    AutogradeAllForm,
    CancelBatchForm,
    GradeForm,
    QuestionGradeForm,
    RegradeForm,
)
from lms.instructor.lookups import my_assignment
from lms.instructor.routes import bp
from lms.models import (
    Assignment,
    CellKind,
    Cohort,
    Course,
    Grade,
    GradedCell,
    GradingBatch,
    Submission,
)
from lms.queries import coursework, enrolments, marking
from lms.scopes import may_see, taught_course_ids
from lms.services import grading
from lms.storage import blobs

# --- Submissions and batches -------------------------------------------------------------


@bp.get("/courses/<slug>/assignments/<assignment_slug>/submissions")
def submissions(slug: str, assignment_slug: str) -> ResponseReturnValue:
    course, assignment = my_assignment(slug, assignment_slug)
    cohorts = enrolments.course_cohorts(course.id)
    cohort = _chosen_cohort(cohorts, request.args.get("cohort", ""))
    latest = grading.latest_submissions(assignment, cohort)
    marking.submission_learners(latest)
    chosen = cohort.slug if cohort else ""
    return render_template(
        "instructor/submissions.html",
        course=course,
        assignment=assignment,
        cohorts=cohorts,
        cohort=cohort,
        rows=marking.submission_scores(latest),
        batches=marking.assignment_batches(assignment.id),
        waiting_for_gpu=grading.waiting_for_gpu(assignment),
        autograde_form=AutogradeAllForm(cohort=chosen),
        regrade_form=RegradeForm(cohort=chosen, formdata=None),
    )


@bp.post("/courses/<slug>/assignments/<assignment_slug>/batches")
def autograde_all(slug: str, assignment_slug: str) -> ResponseReturnValue:
    course, assignment = my_assignment(slug, assignment_slug)
    form = AutogradeAllForm()  # its CSRF token is checked for every POST by CSRFProtect
    cohort = _chosen_cohort(enrolments.course_cohorts(course.id), form.cohort.data or "")
    return _start_batch(course, assignment, cohort, None)


@bp.post("/courses/<slug>/assignments/<assignment_slug>/regrade")
def regrade(slug: str, assignment_slug: str) -> ResponseReturnValue:
    course, assignment = my_assignment(slug, assignment_slug)
    form = RegradeForm()
    cohort = _chosen_cohort(enrolments.course_cohorts(course.id), form.cohort.data or "")
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(_submissions_url(course, assignment, cohort))
    return _start_batch(course, assignment, cohort, list(form.submissions.data))


def _start_batch(
    course: Course, assignment: Assignment, cohort: Cohort | None, ids: list[int] | None
) -> ResponseReturnValue:
    try:
        batch = grading.create_batch(assignment, current_user, cohort=cohort, submission_ids=ids)
    except grading.GradingError as e:
        flash(str(e), "error")
        return redirect(_submissions_url(course, assignment, cohort))
    flash(
        ngettext(
            "Autograding %(num)d submission.", "Autograding %(num)d submissions.", batch.total
        ),
        "info",
    )
    return redirect(url_for(".batch", batch_id=batch.id))


@bp.get("/batches/<int:batch_id>")
def batch(batch_id: int) -> ResponseReturnValue:
    found = _my_batch(batch_id)
    return render_template(
        "instructor/batch.html",
        batch=found,
        course=found.assignment.course,
        progress=grading.progress(found),
        failures=marking.batch_failures(found.id),
        cancel_form=CancelBatchForm(),
        clock=clock,
    )


@bp.get("/batches/<int:batch_id>/progress.json")
def batch_progress(batch_id: int) -> ResponseReturnValue:
    response = Response(
        json.dumps(grading.progress(_my_batch(batch_id)).to_json()),
        mimetype="application/json",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/batches/<int:batch_id>/cancel")
def cancel_batch(batch_id: int) -> ResponseReturnValue:
    found = _my_batch(batch_id)
    if CancelBatchForm().validate_on_submit():
        try:
            cancelled = grading.cancel_batch(found)
        except grading.GradingError as e:
            flash(str(e), "error")
        else:
            flash(
                ngettext(
                    "Batch cancelled: %(num)d waiting submission will not be graded.",
                    "Batch cancelled: %(num)d waiting submissions will not be graded.",
                    cancelled,
                ),
                "info",
            )
    return redirect(url_for(".batch", batch_id=found.id))


# --- Grading question by question --------------------------------------------------------


@bp.get("/courses/<slug>/assignments/<assignment_slug>/grade")
def grade_questions(slug: str, assignment_slug: str) -> ResponseReturnValue:
    course, assignment = my_assignment(slug, assignment_slug)
    cohorts = enrolments.course_cohorts(course.id)
    cohort = _chosen_cohort(cohorts, request.args.get("cohort", ""))
    latest = grading.latest_submissions(assignment, cohort)
    cells = [cell for notebook in assignment.notebooks for cell in notebook.cells]
    return render_template(
        "instructor/grade_questions.html",
        course=course,
        assignment=assignment,
        cohorts=cohorts,
        cohort=cohort,
        cells=cells,
        answers=len(latest),
        ungraded=marking.ungraded_counts([c.id for c in cells], [s.id for s in latest]),
    )


@bp.route("/courses/<slug>/assignments/<assignment_slug>/grade/<grade_id>", methods=["GET", "POST"])
def grade_question(slug: str, assignment_slug: str, grade_id: str) -> ResponseReturnValue:
    course, assignment = my_assignment(slug, assignment_slug)
    cell = _graded_cell(assignment, grade_id, request.args.get("notebook"))
    cohorts = enrolments.course_cohorts(course.id)
    cohort = _chosen_cohort(cohorts, request.args.get("cohort", ""))
    latest = grading.latest_submissions(assignment, cohort)
    marking.submission_learners(latest)
    grades = marking.cell_grades(cell.id, [s.id for s in latest])
    n = min(max(request.args.get("n", 0, type=int) or 0, 0), max(len(latest) - 1, 0))
    posted = QuestionGradeForm() if request.method == "POST" else None
    if posted is not None:
        # The form names its submission: a learner submitting meanwhile shifts the positions.
        chosen = posted.submission_id.data
        position = next((i for i, s in enumerate(latest) if s.id == chosen), None)
        if position is None:
            flash(_("This answer has changed meanwhile; look at it again."), "error")
            return redirect(_question_url(assignment, cell, cohort, n))
        n = position
    current = latest[n] if latest else None
    grade = grades.get(current.id) if current else None
    form = (
        posted
        if posted is not None
        else QuestionGradeForm(formdata=None, data=_grade_data(grade, current))
    )
    form.autograded = cell.kind == CellKind.AUTOGRADED
    form.current_override = grade.manual_score if grade else None
    if current is not None and form.validate_on_submit():
        if _save_grade(form, current, cell):
            flash(_("Saved the grade of %(name)s.", name=current.user.name), "saved")
            if n + 1 < len(latest):
                return redirect(_question_url(assignment, cell, cohort, n + 1))
            flash(_("That was the last answer to this question."), "info")
            return redirect(
                url_for(
                    ".grade_questions",
                    slug=course.slug,
                    assignment_slug=assignment.slug,
                    cohort=cohort.slug if cohort else None,
                )
            )
    answer = (
        _submitted_cells(current, cell.notebook.name).get((cell.notebook.name, cell.grade_id))
        if current
        else None
    )
    ungraded = [
        (i, s)
        for i, s in enumerate(latest)
        if grades.get(s.id) is None or grades[s.id].score is None
    ]
    page = render_template(
        "instructor/grade_question.html",
        course=course,
        assignment=assignment,
        cell=cell,
        cohorts=cohorts,
        cohort=cohort,
        total=len(latest),
        n=n,
        current=current,
        grade=grade,
        answer=answer,
        form=form,
        ungraded=ungraded,
        question_url=lambda i: _question_url(assignment, cell, cohort, i),
    )
    return page, 400 if form.errors else 200


# --- Grading learner by learner ----------------------------------------------------------


@bp.get("/submissions/<int:submission_id>")
def submission(submission_id: int) -> ResponseReturnValue:
    return _submission_page(_my_submission(submission_id))


@bp.post("/submissions/<int:submission_id>/cells/<int:cell_id>")
def grade_cell(submission_id: int, cell_id: int) -> ResponseReturnValue:
    found = _my_submission(submission_id)
    cell = db.get_or_404(GradedCell, cell_id)
    if cell.notebook.assignment_id != found.assignment_id:
        abort(404)
    grade = marking.cell_grades(cell.id, [found.id]).get(found.id)
    form = GradeForm(prefix=f"cell{cell.id}")
    form.autograded = cell.kind == CellKind.AUTOGRADED
    form.current_override = grade.manual_score if grade else None
    if form.validate_on_submit() and _save_grade(form, found, cell):
        # Said in the cell saved (the page opens there), not at the top of the page.
        return redirect(
            url_for(".submission", submission_id=found.id, saved=cell.id, _anchor=f"cell-{cell.id}")
        )
    return _submission_page(found, {cell.id: form}), 400


@bp.get("/submissions/<int:submission_id>/feedback/<notebook>.html")
def submission_feedback(submission_id: int, notebook: str) -> ResponseReturnValue:
    found = _my_submission(submission_id)
    return feedback_page.response(grading.latest_result(found), notebook)


@bp.get("/submissions/<int:submission_id>/history")
def submission_history(submission_id: int) -> ResponseReturnValue:
    found = _my_submission(submission_id)
    return render_template(
        "instructor/submission_history.html",
        submission=found,
        course=found.assignment.course,
        events=marking.grade_history(found.id),
    )


def _submission_page(found: Submission, posted: dict[int, GradeForm] | None = None) -> str:
    rows = marking.submission_grades(found)
    forms = {}
    for cell, grade in rows:
        form = (posted or {}).get(cell.id)
        if form is None:
            form = GradeForm(prefix=f"cell{cell.id}", formdata=None, data=_grade_data(grade, found))
            form.autograded = cell.kind == CellKind.AUTOGRADED
        forms[cell.id] = form
    job = grading.latest_result(found)
    return render_template(
        "instructor/submission.html",
        submission=found,
        course=found.assignment.course,
        assignment=found.assignment,
        score=marking.submission_scores([found])[0],
        rows=rows,
        forms=forms,
        answers=_submitted_cells(found),
        job=job,
        feedback=sorted((job.feedback or {}) if job else {}),
        attempts=marking.learner_submissions(found.user_id, found.assignment_id, found.cohort_id),
    )


def _save_grade(form: GradeForm, found: Submission, cell: GradedCell) -> bool:
    """Record the form's grade; False with the reason on the form when the service refuses."""
    try:
        grading.grade_by_hand(
            found,
            cell,
            current_user,
            form.score.data,
            form.comment.data or "",
            form.reason.data or "",
        )
    except grading.GradingError as e:
        form.score.errors = [*form.score.errors, str(e)]
        return False
    return True


def _grade_data(grade: Grade | None, found: Submission | None) -> dict[str, Any]:
    return {
        "score": grade.manual_score if grade else None,
        "comment": grade.comment if grade else "",
        "submission_id": found.id if found else None,
    }


# --- Scopes: someone else's course is answered like a missing one ------------------------


def _my_batch(batch_id: int) -> GradingBatch:
    found = db.get_or_404(GradingBatch, batch_id)
    if not may_see(taught_course_ids(current_user), found.assignment.course_id):
        abort(404)
    return found


def _my_submission(submission_id: int) -> Submission:
    found = db.get_or_404(Submission, submission_id)
    if not may_see(taught_course_ids(current_user), found.assignment.course_id):
        abort(404)
    return found


def _chosen_cohort(cohorts: list[Cohort], slug: str) -> Cohort | None:
    """The cohort named by slug among those taking the course; None for all of them."""
    if not slug:
        return None
    found = next((c for c in cohorts if c.slug == slug), None)
    if found is None:
        abort(404)
    return found


def _graded_cell(assignment: Assignment, grade_id: str, notebook: str | None) -> GradedCell:
    found = coursework.graded_cell(assignment.id, grade_id, notebook)
    if found is None:
        abort(404)
    return found


def _submissions_url(course: Course, assignment: Assignment, cohort: Cohort | None) -> str:
    return url_for(
        ".submissions",
        slug=course.slug,
        assignment_slug=assignment.slug,
        cohort=cohort.slug if cohort else None,
    )


def _question_url(assignment: Assignment, cell: GradedCell, cohort: Cohort | None, n: int) -> str:
    return url_for(
        ".grade_question",
        slug=assignment.course.slug,
        assignment_slug=assignment.slug,
        grade_id=cell.grade_id,
        notebook=cell.notebook.name if len(assignment.notebooks) > 1 else None,
        cohort=cohort.slug if cohort else None,
        n=n,
    )


# --- Formatting --------------------------------------------------------------------------


def clock(seconds: float | None) -> str:
    """A duration as h:mm:ss or m:ss, as lms/static/batch.js writes it; "—" when unknown."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# --- The learner's cells, read from the submitted notebooks ------------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
MAX_TEXT = 20_000
MAX_OUTPUTS = 50


@dataclass(frozen=True)
class CellOutput:
    text: str
    # Other representations it has (image/png, text/html...), never rendered here.
    kinds: tuple[str, ...] = ()
    error: bool = False


@dataclass(frozen=True)
class SubmittedCell:
    cell_type: str
    source: str
    outputs: tuple[CellOutput, ...]

    @property
    def markdown(self) -> Markup | None:
        """A written answer (Markdown cell) as sanitized HTML; None for code."""
        return answers.markdown_html(self.source) if self.cell_type == "markdown" else None


def _submitted_cells(
    found: Submission, notebook: str | None = None
) -> dict[tuple[str, str], SubmittedCell]:
    """(notebook name, grade_id) -> the learner's cell of that grade_id, from the stored
    files (only the named notebook's when given). Unreadable files give no cells."""
    cells: dict[tuple[str, str], SubmittedCell] = {}
    for filename, digest in sorted(found.files.items()):
        name = filename.removesuffix(".ipynb")
        if notebook is not None and name != notebook:
            continue
        try:
            nb = json.loads(blobs.get(digest))
        except (OSError, ValueError):
            continue
        raw_cells = nb.get("cells") if isinstance(nb, dict) else None
        for cell in raw_cells if isinstance(raw_cells, list) else []:
            grade_id = _grade_id(cell)
            if grade_id is None or (name, grade_id) in cells:
                continue
            cell_type = str(cell.get("cell_type", ""))
            cells[(name, grade_id)] = SubmittedCell(
                cell_type,
                _text(cell.get("source")),
                _outputs(cell.get("outputs")) if cell_type == "code" else (),
            )
    return cells


def _grade_id(cell: Any) -> str | None:
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = "".join(part for part in value if isinstance(part, str))
    if not isinstance(value, str):
        return ""
    text = ANSI.sub("", value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "\n…"


def _outputs(raw: Any) -> tuple[CellOutput, ...]:
    outputs = []
    for out in raw[:MAX_OUTPUTS] if isinstance(raw, list) else []:
        if not isinstance(out, dict):
            continue
        kind = out.get("output_type")
        if kind == "stream":
            outputs.append(CellOutput(_text(out.get("text"))))
        elif kind in ("execute_result", "display_data"):
            data = out.get("data")
            data = data if isinstance(data, dict) else {}
            others = tuple(sorted(str(k) for k in data if k != "text/plain"))
            outputs.append(CellOutput(_text(data.get("text/plain")), others))
        elif kind == "error":
            traceback = out.get("traceback")
            text = (
                "\n".join(_text(line) for line in traceback)
                if isinstance(traceback, list) and traceback
                else f"{_text(out.get('ename'))}: {_text(out.get('evalue'))}"
            )
            outputs.append(CellOutput(_text(text), error=True))
    return tuple(outputs)
