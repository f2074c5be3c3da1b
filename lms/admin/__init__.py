from lms.admin.routes import bp

__all__ = ["bp"]
