"""Configuration: defaults, then LMS_* environment variables, then the test config."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from flask import Flask

LANGUAGES = ("en", "vi", "ko")
# Each language named in itself, for the language menu.
LANGUAGE_NAMES = {"en": "English", "vi": "Tiếng Việt", "ko": "한국어"}

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # default: SQLite file in instance/
    "QUEUE_URL": None,  # default: SQLite file in instance/ (Huey), redis://... to scale out
    "DATA_DIR": None,  # default: instance/data
    "COURSES_DIR": None,  # default: courses/ beside lms/
    "GPU_SLOTS": "",
    # Where the NVIDIA driver's files are (/proc/driver/nvidia, /dev/nvidia*): "/" on a real
    # host; the tests use a fake tree to check which device files a sandbox gets.
    "GPU_DEVICE_ROOT": "/",
    "KERNEL_POOL_SIZE": 2,
    # Labs' kernels from a Jupyter Kernel Gateway (its KG_AUTH_TOKEN, if any) instead of the
    # lab hub's sandbox pool. The gateway must list kernels (KG_LIST_KERNELS=True).
    "KERNEL_GATEWAY_URL": "",
    "KERNEL_GATEWAY_TOKEN": "",
    "SANDBOX": "bwrap",
    "CELL_TIMEOUT": 30,
    "NOTEBOOK_TIMEOUT": 300,
    "MAX_UPLOAD_MB": 20,
    # Queue consumer processes of `flask lms worker`; each has its own warm kernel pool.
    "WORKERS": 2,
    # The grading lanes `flask lms worker` takes: "cpu", "gpu" or "cpu,gpu" (empty: the CPU
    # lane, and the GPU lane too where GPU_SLOTS is set). GPU jobs go only to the "gpu" lane.
    "WORKER_LANES": "",
    # Each worker process warms its graders for the assignments falling due within this many
    # minutes (lms.queries.rush; the plan is on /admin/rush). 0: never ahead of time.
    "PREWARM_MINUTES": 60,
    # Submissions a minute one grading process keeps up with: the plan's "processes needed".
    # benchmarks.deadline measured 87 to 109 on the NumPy course's first assignment (2 cores);
    # heavier notebooks (the PyTorch course's) grade slower: lower it for them.
    "GRADING_RATE_PER_PROCESS": 90.0,
    # A worker renews its lease on a job every third of this; a dead one's job is retaken after it.
    "GRADING_LEASE_SECONDS": 60,
    # Instant-feedback gradings a learner may ask for per hour (more wait for the batch).
    "INSTANT_FEEDBACK_PER_HOUR": 10,
    # A learner counts as active who submitted anything in this many days.
    "ACTIVE_DAYS": 14,
    # Progress exports of up to this many learner rows are written while the browser waits;
    # larger ones are written by the worker, with a progress page.
    "EXPORT_INLINE_ROWS": 5000,
    # Failed sign-ins (lms.services.login_throttle) before each further attempt waits 1 s,
    # 2 s, 4 s... up to LOGIN_MAX_DELAY_SECONDS: per account and client address (15 minutes),
    # per client address (15 minutes), per account (an hour; not for a browser holding the
    # account's device cookie).
    "LOGIN_FREE_FAILURES": 5,
    "LOGIN_IP_FREE_FAILURES": 30,
    "LOGIN_ACCOUNT_FREE_FAILURES": 20,
    "LOGIN_MAX_DELAY_SECONDS": 900,
    # Look-ups of the public certificate verification page per client address.
    "VERIFY_LIMIT": "60 per minute",
    # Proxies in front of the LMS whose X-Forwarded-* headers are believed (make run: the lab
    # hub); the client's address then comes from them, for rate limits and logs.
    "TRUSTED_PROXIES": 0,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_HTTPONLY": True,
    "PERMANENT_SESSION_LIFETIME": 12 * 3600,
    "BABEL_DEFAULT_LOCALE": "en",
    # Labs (lms.lab.hub): where the LMS reaches the hub's API, how many lab servers and
    # sandboxed kernels may run at once, and when an idle lab server is stopped.
    "LAB_HUB_URL": "http://127.0.0.1:8091",
    # 0: from the machine's cores and memory (lms.lab.capacity); a number overrides it.
    "LAB_SERVERS": 0,
    "LAB_KERNELS": 0,
    "LAB_KERNELS_PER_LEARNER": 2,
    "LAB_IDLE_MINUTES": 30,
    # A lab kernel that no browser has been connected to for this long (its tab was closed)
    # and that runs nothing goes back to the shared pool; the notebook stays saved.
    "LAB_KERNEL_RELEASE_SECONDS": 120,
    # A GPU kernel idle this long is shut down, so its GPU slot goes to the next learner.
    "LAB_GPU_IDLE_MINUTES": 10,
    # Modules a lab kernel has imported before the learner's first cell (comma-separated).
    "LAB_PRELOAD": "numpy,pandas,matplotlib.pyplot",
    # Mail (lms.services.mail): smtp://host:port, smtps://user:password@host:465, or empty to
    # write each message to a file under MAIL_DIR (default instance/mail).
    "SMTP_URL": "",
    "MAIL_FROM": "AI Engineers LMS <no-reply@localhost>",
    "MAIL_DIR": None,
    # SMTP connections a batch of invitations sends over at once.
    "MAIL_CONNECTIONS": 4,
    # The site's address as people reach it: links in mails and handed-out link files start
    # with it (never with a Host header a client sent). `make run` sets its own.
    "PUBLIC_URL": "http://127.0.0.1:8000",
    # One-time links: an invitation works this many days, a password reset this many minutes,
    # a new email address's confirmation this many hours.
    "INVITE_DAYS": 14,
    "RESET_MINUTES": 60,
    "EMAIL_CHANGE_HOURS": 24,
    # Password reset requests: per address asked for (whether it exists or not), per client.
    "RESET_LIMIT_PER_ADDRESS": "3 per hour",
    "RESET_LIMIT_PER_CLIENT": "20 per hour",
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    # PostgreSQL ends a session idle inside a transaction this long (0: never), freeing its
    # locks: see lms.extensions.limit_idle_transactions. No request or job of ours idles that
    # long inside one (the worker ends its read before grading).
    "DATABASE_IDLE_TRANSACTION_SECONDS": 120,
    "RATELIMIT_HEADERS_ENABLED": True,
}


def load(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill app.config; derived settings are computed after all sources are read."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("LMS")
    if test_config:
        app.config.from_mapping(test_config)

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    cfg = app.config
    cfg["SQLALCHEMY_DATABASE_URI"] = (
        cfg.get("SQLALCHEMY_DATABASE_URI")
        or cfg["DATABASE_URL"]
        or f"sqlite:///{instance / 'lms.sqlite3'}"
    )
    cfg["DATA_DIR"] = str(cfg["DATA_DIR"] or instance / "data")
    cfg["COURSES_DIR"] = str(cfg["COURSES_DIR"] or Path(app.root_path).parent / "courses")
    cfg["MAIL_DIR"] = str(cfg["MAIL_DIR"] or instance / "mail")
    cfg.update(mail_settings(str(cfg["SMTP_URL"] or ""), cfg))
    cfg["QUEUE_URL"] = cfg["QUEUE_URL"] or f"sqlite:///{instance / 'queue.sqlite3'}"
    cfg["MAX_CONTENT_LENGTH"] = int(cfg["MAX_UPLOAD_MB"]) * 1024 * 1024
    queue_url = str(cfg["QUEUE_URL"])
    # Flask-Limiter counts where every gunicorn worker sees the same counts: Redis, or a
    # SQLite file of the instance (lms.ratelimit_storage), never one process's memory.
    shared_file = f"lmssqlite://{instance / 'ratelimit.sqlite3'}"
    cfg.setdefault(
        "RATELIMIT_STORAGE_URI", queue_url if queue_url.startswith("redis") else shared_file
    )
    if not cfg.get("SECRET_KEY"):
        cfg["SECRET_KEY"] = _instance_secret(instance / "secret_key")


def _instance_secret(path: Path) -> str:
    """Read the generated secret key, creating it (owner-only) on first start."""
    if path.exists():
        return path.read_text().strip()
    # Written whole to a private temp file, then linked into place: gunicorn workers starting
    # together all end up reading the one key that won the race.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def mail_settings(url: str, cfg: Any) -> dict[str, Any]:
    """Flask-Mailman's settings for an LMS_SMTP_URL: `smtp://host:port` (plain, or with
    `?starttls=1`), `smtps://user:password@host:465` (TLS from the start; user and password
    URL-quoted), or empty: each message written to a file under MAIL_DIR."""
    common = {"MAIL_DEFAULT_SENDER": cfg["MAIL_FROM"], "MAIL_TIMEOUT": 30}
    if not url:
        return {**common, "MAIL_BACKEND": "file", "MAIL_FILE_PATH": cfg["MAIL_DIR"]}
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"LMS_SMTP_URL must be smtp://host:port or smtps://host:port, not {url!r}")
    starttls = parse_qs(parts.query).get("starttls", ["0"])[-1].lower() in ("1", "true", "yes")
    return {
        **common,
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": parts.hostname,
        "MAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 25),
        "MAIL_USE_SSL": parts.scheme == "smtps",
        "MAIL_USE_TLS": parts.scheme == "smtp" and starttls,
        "MAIL_USERNAME": unquote(parts.username) if parts.username else None,
        "MAIL_PASSWORD": unquote(parts.password) if parts.password else None,
    }
