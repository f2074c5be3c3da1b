from lms.invitations.routes import bp

__all__ = ["bp"]
