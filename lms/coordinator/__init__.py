from lms.coordinator import exports  # noqa: F401  (adds the export routes to bp)
from lms.coordinator.routes import bp

__all__ = ["bp"]
