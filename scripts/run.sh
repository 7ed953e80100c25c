#!/usr/bin/env bash
# `make run`: migrate, load demo data, print where everything is, then run web, Celery
# worker and Celery beat in this terminal. Ctrl-C stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."

export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
export PORT="${PORT:-8000}"
export HOST="${HOST:-127.0.0.1}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://${HOST}:${PORT}}"
export PYTHONUNBUFFERED=1
PATH="$PWD/.venv/bin:$PATH"

mkdir -p var/broker/queue var/broker/processed var/static
python manage.py migrate --no-input -v 0
python manage.py seed_demo --base-url "$PUBLIC_BASE_URL"

exec honcho --procfile Procfile.dev start
