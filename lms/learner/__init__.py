from lms.learner.routes import bp

__all__ = ["bp"]
