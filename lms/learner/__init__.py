from lms.learner import labs  # noqa: F401  (registers the lab pages on bp)
from lms.learner.labs import identity_bp, stopped_bp
from lms.learner.routes import bp

__all__ = ["bp", "identity_bp", "stopped_bp"]
