"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json.

Kept beside the routes by hand; tests/lms/views/test_api.py checks that every route is described
(and nothing else), and that the answers match the schemas below.

Over 400 lines on purpose: it is data (one schema per answer), read beside the routes.
"""

from __future__ import annotations

import copy
from typing import Any

JSON = "application/json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/{name}"}


def _id_param(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": what,
        "schema": {"type": "integer"},
    }


COHORT_QUERY = {
    "name": "cohort",
    "in": "query",
    "required": False,
    "description": "Only this cohort (its slug); it must take the assignment's course.",
    "schema": {"type": "string"},
}
ASSIGNMENT_ID = _id_param("assignment_id", "The assignment's id.")
BATCH_ID = _id_param("batch_id", "The grading batch's id.")
SUBMISSION_ID = _id_param("submission_id", "The submission's id.")
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
TIME = {"type": "string", "format": "date-time"}
NULLABLE_NUMBER = {"type": ["number", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "Shown to the user as is."}},
    },
    "TeachingAssignment": {
        "type": "object",
        "required": ["id", "slug", "course", "title", "points", "active", "submissions"],
        "properties": {
            "id": {"type": "integer"},
            "slug": {"type": "string"},
            "course": {"type": "string", "description": "The course's slug."},
            "title": {"type": "string"},
            "points": {"type": "number"},
            "active": {"type": "boolean", "description": "False once gone from courses/."},
            "instant_feedback": {"type": "boolean"},
            "submissions": {"type": "integer", "description": "Submissions (every attempt)."},
        },
    },
    "LearningAssignment": {
        "type": "object",
        "required": ["id", "slug", "course", "title", "points", "cohort", "due_at"],
        "properties": {
            "id": {"type": "integer"},
            "slug": {"type": "string"},
            "course": {"type": "string"},
            "title": {"type": "string"},
            "points": {"type": "number"},
            "cohort": {"type": "string", "description": "The cohort's slug."},
            "opens_at": NULLABLE_TIME,
            "due_at": {
                **NULLABLE_TIME,
                "description": "The learner's own due date (an extension included).",
            },
            "extended": {"type": "boolean"},
            "open": {"type": "boolean", "description": "Released and open: submissions taken."},
            "instant_feedback": {"type": "boolean"},
        },
    },
    "Assignments": {
        "type": "object",
        "required": ["teaching", "learning"],
        "properties": {
            "teaching": {
                "type": "array",
                "items": _ref("TeachingAssignment"),
                "description": "Assignments of the courses the caller teaches (all: admin).",
            },
            "learning": {
                "type": "array",
                "items": _ref("LearningAssignment"),
                "description": "Assignments of the courses the caller's cohorts take.",
            },
        },
    },
    "CellGrade": {
        "type": "object",
        "required": ["notebook", "cell", "kind", "max_score", "score", "status", "comment"],
        "properties": {
            "notebook": {"type": "string"},
            "cell": {"type": "string", "description": "nbgrader's grade_id."},
            "kind": {"type": "string", "enum": ["autograded", "manual"]},
            "max_score": {"type": "number"},
            "score": NULLABLE_NUMBER,
            "status": {"type": "string"},
            "comment": {"type": "string"},
            "auto_score": {**NULLABLE_NUMBER, "description": "Staff only."},
            "manual_score": {**NULLABLE_NUMBER, "description": "Staff only."},
        },
    },
    "CellStatus": {
        "type": "object",
        "required": ["notebook", "cell", "status"],
        "properties": {
            "notebook": {"type": "string"},
            "cell": {"type": "string"},
            "status": {"type": "string", "description": "passed, partial, failed, error..."},
        },
    },
    "Submission": {
        "type": "object",
        "description": (
            "Scores and grades appear for the course's staff, and for the learner once "
            "feedback is released; before that the learner sees instant_feedback only."
        ),
        "required": [
            "id",
            "assignment",
            "attempt",
            "submitted_at",
            "late_seconds",
            "state",
            "feedback_released",
        ],
        "properties": {
            "id": {"type": "integer"},
            "assignment": {"type": "integer", "description": "The assignment's id."},
            "course": {"type": "string"},
            "cohort": {"type": "string"},
            "attempt": {"type": "integer"},
            "submitted_at": TIME,
            "due_at": NULLABLE_TIME,
            "late_seconds": {"type": "integer"},
            "state": {
                "type": "string",
                "enum": ["submitted", "queued", "running", "done", "failed", "cancelled"],
                "description": "Of the latest grading job (submitted: never queued).",
            },
            "files": {"type": "array", "items": {"type": "string"}},
            "feedback_released": {"type": "boolean"},
            "learner": {"type": "string", "format": "email", "description": "Staff only."},
            "score": {**NULLABLE_NUMBER, "description": "Late penalty applied."},
            "raw_score": NULLABLE_NUMBER,
            "max_score": {"type": "number"},
            "late_penalty_percent": {"type": "number"},
            "needs_grading": {"type": "integer"},
            "grades": {"type": "array", "items": _ref("CellGrade")},
            "instant_feedback": {
                "type": ["object", "null"],
                "required": ["cells"],
                "properties": {
                    "graded_at": NULLABLE_TIME,
                    "cells": {"type": "array", "items": _ref("CellStatus")},
                },
            },
        },
    },
    "SubmissionRow": {
        "type": "object",
        "required": ["id", "learner", "attempt", "submitted_at", "state"],
        "properties": {
            "id": {"type": "integer"},
            "learner": {"type": "string", "format": "email"},
            "cohort": {"type": "string"},
            "attempt": {"type": "integer"},
            "submitted_at": TIME,
            "late_seconds": {"type": "integer"},
            "state": {"type": "string"},
            "score": NULLABLE_NUMBER,
            "max_score": {"type": "number"},
        },
    },
    "BatchRequest": {
        "type": "object",
        "properties": {
            "scope": {"type": "string", "enum": ["all", "selected"], "default": "all"},
            "submissions": {
                "type": "array",
                "items": {"type": "integer"},
                "minItems": 1,
                "description": "Submission ids, with scope selected.",
            },
            "cohort": {"type": "string", "description": "Only this cohort (its slug)."},
        },
    },
    "Batch": {
        "type": "object",
        "required": ["id", "total", "done", "failed", "state"],
        "properties": {
            "id": {"type": "integer"},
            "assignment": {"type": "integer"},
            "cohort": {"type": ["string", "null"]},
            "scope": {"type": "string", "enum": ["all", "selected"]},
            "created_at": TIME,
            "finished_at": NULLABLE_TIME,
            "total": {"type": "integer"},
            "done": {"type": "integer"},
            "failed": {"type": "integer"},
            "cancelled": {"type": "integer"},
            "running": {"type": "integer"},
            "queued": {"type": "integer"},
            "state": {"type": "string", "enum": ["running", "done", "cancelled"]},
            "rate_per_minute": {"type": "number"},
            "seconds_left": {"type": ["integer", "null"]},
            "waiting_for_gpu": {
                "type": "boolean",
                "description": "GPU jobs wait and no grading worker with GPU slots is alive.",
            },
        },
    },
    "GradeRow": {
        "type": "object",
        "required": ["submission", "learner", "score", "max_score"],
        "properties": {
            "submission": {"type": "integer"},
            "learner": {"type": "string", "format": "email"},
            "cohort": {"type": "string"},
            "attempt": {"type": "integer"},
            "submitted_at": TIME,
            "score": {**NULLABLE_NUMBER, "description": "Late penalty applied."},
            "raw_score": NULLABLE_NUMBER,
            "max_score": {"type": "number"},
            "late_penalty_percent": {"type": "number"},
            "needs_grading": {"type": "integer"},
            "state": {"type": "string"},
        },
    },
    "Grades": {
        "type": "object",
        "required": ["assignment", "grades"],
        "properties": {
            "assignment": {"type": "integer"},
            "cohort": {"type": ["string", "null"]},
            "grades": {"type": "array", "items": _ref("GradeRow")},
        },
    },
}

ERROR = _ref("Error")
RESPONSES: dict[str, Any] = {
    "BadRequest": _json(ERROR, "The request is wrong; the error says how."),
    "Unauthorized": {
        **_json(ERROR, "No API token, or one that is unknown or revoked."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    "Forbidden": _json(ERROR, "The caller may see the assignment but lacks the role."),
    "NotFound": _json(ERROR, "No such object, or not the caller's to see."),
    "Conflict": _json(ERROR, "The batch has already ended."),
    "TooLarge": _json(ERROR, "The upload is over LMS_MAX_UPLOAD_MB."),
}

STAFF = "Instructors of the course and admins; a learner of the course gets 403."


def _operation(
    summary: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    errors: tuple[str, ...] = (),
    public: bool = False,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary}
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = body
    all_responses = dict(responses)
    if not public:
        all_responses["401"] = _error("Unauthorized")
    codes = {
        "400": "BadRequest",
        "403": "Forbidden",
        "404": "NotFound",
        "409": "Conflict",
        "413": "TooLarge",
    }
    for code in errors:
        all_responses[code] = _error(codes[code])
    operation["responses"] = all_responses
    if public:
        operation["security"] = []
    return operation


PATHS: dict[str, Any] = {
    "/assignments": {
        "get": _operation(
            "The caller's assignments: those they teach and those they take.",
            {"200": _json(_ref("Assignments"), "Both lists (either may be empty).")},
        )
    },
    "/assignments/{assignment_id}/submissions": {
        "parameters": [ASSIGNMENT_ID],
        "post": _operation(
            "Submit notebooks (learners of the course). The submission is autograded at once "
            "where the assignment gives instant feedback.",
            {
                "201": _json(_ref("Submission"), "A new attempt."),
                "200": _json(
                    _ref("Submission"),
                    "A retry (same Idempotency-Key) or an upload identical to the latest "
                    "attempt: that attempt, nothing new stored.",
                ),
            },
            parameters=[
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "8 to 64 of A-Z a-z 0-9 _ . : -; a retry with the same key "
                    "gives back the first answer's submission.",
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{8,64}$"},
                }
            ],
            body={
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["notebook"],
                            "properties": {
                                "notebook": {
                                    "type": "array",
                                    "description": "The assignment's notebooks (.ipynb).",
                                    "items": {
                                        "type": "string",
                                        "contentMediaType": "application/x-ipynb+json",
                                    },
                                },
                                "cohort": {
                                    "type": "string",
                                    "description": "The cohort's slug, needed when the "
                                    "learner is in several cohorts taking the course.",
                                },
                            },
                        }
                    }
                },
            },
            errors=("400", "403", "404", "413"),
        ),
        "get": _operation(
            "Every submission of the assignment, oldest first. " + STAFF,
            {"200": _json({"type": "array", "items": _ref("SubmissionRow")}, "The submissions.")},
            parameters=[
                COHORT_QUERY,
                {
                    "name": "latest",
                    "in": "query",
                    "required": False,
                    "description": "1: only each learner's latest attempt.",
                    "schema": {"type": "string", "enum": ["0", "1", "true", "false"]},
                },
            ],
            errors=("400", "403", "404"),
        ),
    },
    "/submissions/{submission_id}": {
        "parameters": [SUBMISSION_ID],
        "get": _operation(
            "One submission: a learner's own (404 for anyone else's), or any of a course the "
            "caller teaches.",
            {"200": _json(_ref("Submission"), "The submission, as the caller may see it.")},
            errors=("404",),
        ),
    },
    "/assignments/{assignment_id}/batches": {
        "parameters": [ASSIGNMENT_ID],
        "post": _operation(
            "Autograde all latest submissions, or chosen ones, as one batch. " + STAFF,
            {
                "202": {
                    **_json(_ref("Batch"), "Queued; follow its progress at Location."),
                    "headers": {"Location": {"schema": {"type": "string"}}},
                }
            },
            body={"required": True, "content": {JSON: {"schema": _ref("BatchRequest")}}},
            errors=("400", "403", "404"),
        ),
    },
    "/batches/{batch_id}": {
        "parameters": [BATCH_ID],
        "get": _operation(
            "A batch's progress; state is done once every job has ended.",
            {"200": _json(_ref("Batch"), "The progress.")},
            errors=("404",),
        ),
    },
    "/batches/{batch_id}/cancel": {
        "parameters": [BATCH_ID],
        "post": _operation(
            "Cancel a batch's queued jobs (jobs being graded finish).",
            {"200": _json(_ref("Batch"), "The progress after cancelling.")},
            errors=("404", "409"),
        ),
    },
    "/assignments/{assignment_id}/grades": {
        "parameters": [ASSIGNMENT_ID],
        "get": _operation(
            "Each learner's latest attempt with its score. " + STAFF,
            {"200": _json(_ref("Grades"), "One row per learner (and cohort).")},
            parameters=[COHORT_QUERY],
            errors=("400", "403", "404"),
        ),
    },
    "/openapi.json": {
        "get": _operation(
            "This document.",
            {"200": {"description": "OpenAPI 3.1.", "content": {JSON: {"schema": {}}}}},
            public=True,
        ),
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "LMS grading API",
        "version": "1",
        "description": (
            "Submissions, grading batches and grades. Authenticate with "
            "`Authorization: Bearer <token>` (from `flask --app wsgi lms create-token EMAIL`); "
            'browser sessions are not accepted. Errors are {"error": message}.'
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerAuth": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token from `flask lms create-token EMAIL`.",
            }
        },
        "schemas": SCHEMAS,
        "responses": RESPONSES,
    },
}


def document() -> dict[str, Any]:
    """A copy of the document (callers may change theirs)."""
    return copy.deepcopy(DOCUMENT)
