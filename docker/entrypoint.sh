#!/bin/sh
# web: migrate the database, then serve with gunicorn. Anything else runs as given
# (e.g. `flask lms demo`, `flask lms import-learners FILE --cohort SLUG`).
set -eu
case "${1:-web}" in
  web)
    flask db upgrade
    exec gunicorn --bind "0.0.0.0:${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" \
      --access-logfile - wsgi:app
    ;;
  *)
    exec "$@"
    ;;
esac
