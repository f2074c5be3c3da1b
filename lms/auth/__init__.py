from lms.auth.routes import bp

__all__ = ["bp"]
