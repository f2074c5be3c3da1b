# One image for the web process, the queue worker (`flask lms worker`) and the lab hub
# (`labs`: the public entry point, proxying to web and to the learners' lab servers).
# It mirrors the Makefile: install requirements, compile translations, migrate, run gunicorn.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLASK_APP=wsgi \
    LMS_INSTANCE_PATH=/var/lib/lms

# bubblewrap: every learner kernel runs in its sandbox; grading refuses to start without it.
# (Inside a container it needs user namespaces, or run the grading worker with --privileged.)
# fonts-nanum: Korean names on certificates and PDF reports.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap=0.8.* fonts-nanum=20200506-* \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN pybabel compile -d lms/translations \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/lms lms \
    && chmod +x docker/entrypoint.sh

USER 10001
VOLUME ["/var/lib/lms"]
EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
