"""Flask extensions, created unbound here and bound to the app in create_app()."""

from typing import Any

import sqlalchemy as sa
from flask import Flask
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


def limit_idle_transactions(app: Flask) -> None:
    """On PostgreSQL, a session left idle inside a transaction for longer than
    DATABASE_IDLE_TRANSACTION_SECONDS is ended by the server, and its locks with it. A host
    that dies mid-transaction (power, kernel panic, a severed link) otherwise keeps its locks
    until TCP gives up on it, hours later, and every worker waiting on them waits as long."""
    seconds = int(app.config["DATABASE_IDLE_TRANSACTION_SECONDS"])
    if not seconds:
        return
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        return

    def on_connect(connection: Any, _record: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"SET idle_in_transaction_session_timeout = {seconds * 1000}")
        connection.commit()

    sa.event.listen(engine, "connect", on_connect)
