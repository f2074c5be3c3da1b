from lms.coordinator.routes import bp

__all__ = ["bp"]
