from lms.learner import labs  # noqa: F401  (registers the lab pages on bp)
from lms.learner.labs import stopped_bp
from lms.learner.routes import bp

__all__ = ["bp", "stopped_bp"]
