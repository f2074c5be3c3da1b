#!/bin/sh
# web: migrate the database, then serve with gunicorn.
# labs: the lab hub, the site's public entry point (a proxy to the web container at LMS_URL
#   and to the learners' lab servers); it needs the same LMS_SECRET_KEY, LMS_DATA_DIR and
#   database as web, and LMS_LAB_HUB_URL pointing at it from web. Its private API listens on
#   the loopback unless LAB_HUB_API_HOST names the (private) address web reaches it on; never
#   publish that port. Anything else runs as given
# (e.g. `flask lms demo`, `flask lms import-learners FILE --cohort SLUG`).
set -eu
case "${1:-web}" in
  web)
    flask db upgrade
    exec gunicorn --bind "0.0.0.0:${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" \
      --access-logfile - wsgi:app
    ;;
  labs)
    exec flask lms labs --host 0.0.0.0 --port "${PORT:-8000}" \
      --api-host "${LAB_HUB_API_HOST:-127.0.0.1}" \
      --lms-url "${LMS_URL:-http://web:8000}"
    ;;
  *)
    exec "$@"
    ;;
esac
