from lms.instructor.routes import bp

__all__ = ["bp"]
