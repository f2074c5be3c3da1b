from lms.instructor import grading, insight  # noqa: F401  (register their pages on bp)
from lms.instructor.routes import bp

__all__ = ["bp"]
