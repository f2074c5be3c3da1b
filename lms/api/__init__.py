from lms.api.routes import bp

__all__ = ["bp"]
