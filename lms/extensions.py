"""Flask extensions, created unbound here and bound to the app in create_app()."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mailman import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from lms import ratelimit_storage  # noqa: F401 - registers the lmssqlite:// storage scheme
from lms.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
# Outgoing mail (lms.services.mail); its settings come from LMS_SMTP_URL (lms.config).
mail = Mail()
# Storage comes from RATELIMIT_STORAGE_URI: Redis when the queue is Redis, else a SQLite file
# of the instance (lms.ratelimit_storage) that all gunicorn workers share.
limiter = Limiter(key_func=get_remote_address)
