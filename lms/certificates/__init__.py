from lms.certificates.routes import bp

__all__ = ["bp"]
