"""All models, importable from one place (and registered on Base.metadata on import)."""

from lms.models.accounts import (
    AccountLink,
    AuditEvent,
    InvitationBatch,
    InvitationBatchState,
    LinkPurpose,
)
from lms.models.base import Base, utcnow
from lms.models.courses import (
    Assignment,
    AssignmentChange,
    AssignmentNotebook,
    CellKind,
    Course,
    GradedCell,
    Level,
    Release,
)
from lms.models.grading import (
    ApiToken,
    BatchState,
    Extension,
    Grade,
    GradeEvent,
    GradeSource,
    GradingBatch,
    GradingJob,
    JobKind,
    JobState,
    Submission,
    WorkerProcess,
)
from lms.models.labs import LabKernel, LabServer
from lms.models.people import Organisation, OrganisationKind, Role, RoleGrant, User
from lms.models.programs import (
    Cohort,
    CohortAssignment,
    Enrolment,
    EnrolmentStatus,
    Program,
    cohort_courses,
)
from lms.models.reports import Certificate, ExportJob, ExportState
from lms.models.security import LoginThrottle, UserSession

__all__ = [
    "AccountLink",
    "AuditEvent",
    "InvitationBatch",
    "InvitationBatchState",
    "LinkPurpose",
    "ApiToken",
    "BatchState",
    "Extension",
    "Grade",
    "GradeEvent",
    "GradeSource",
    "GradingBatch",
    "GradingJob",
    "JobKind",
    "JobState",
    "LabKernel",
    "LabServer",
    "LoginThrottle",
    "Submission",
    "Assignment",
    "AssignmentChange",
    "AssignmentNotebook",
    "CellKind",
    "CohortAssignment",
    "GradedCell",
    "Level",
    "Release",
    "Base",
    "Certificate",
    "ExportJob",
    "ExportState",
    "Cohort",
    "Course",
    "Enrolment",
    "EnrolmentStatus",
    "Organisation",
    "OrganisationKind",
    "Program",
    "Role",
    "RoleGrant",
    "User",
    "UserSession",
    "WorkerProcess",
    "cohort_courses",
    "utcnow",
]
