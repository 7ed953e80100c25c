#!/usr/bin/env bash
# `make run`: migrate, load demo data, print where everything is, then run web, Celery
# worker, Celery beat and the offline Stripe sandbox in this terminal. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."

export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
export PORT="${PORT:-8000}"
export HOST="${HOST:-127.0.0.1}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://${HOST}:${PORT}}"
export PYTHONUNBUFFERED=1
# The offline Stripe sandbox runs too, unless real Stripe keys are given.
export STRIPE_SANDBOX_PORT="${STRIPE_SANDBOX_PORT:-12111}"
PROCESSES="web worker beat stripe"
if [ -n "${STRIPE_SECRET_KEY:-}" ]; then
  PROCESSES="web worker beat"
else
  export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_sandbox_local_only}"
fi
PATH="$PWD/.venv/bin:$PATH"

mkdir -p var/broker/queue var/broker/processed var/broker/control var/static
python manage.py migrate --no-input -v 0
python manage.py seed_demo --base-url "$PUBLIC_BASE_URL"

# shellcheck disable=SC2086 # the process names are separate words
exec honcho --procfile Procfile.dev start $PROCESSES
