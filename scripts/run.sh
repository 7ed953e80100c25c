#!/usr/bin/env bash
# `make run`: migrate, load demo data, print where everything is, then run web, Celery
# worker, Celery beat and the offline Stripe and YooKassa sandboxes in this terminal. Ctrl-C
# stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."

export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
export PORT="${PORT:-8000}"
export HOST="${HOST:-127.0.0.1}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://${HOST}:${PORT}}"
export PYTHONUNBUFFERED=1
# Warnings and errors only; each email still gets its line. LOG_LEVEL=INFO shows every task.
export LOG_LEVEL="${LOG_LEVEL:-WARNING}"
export BILLING_CLOCK_FILE="${BILLING_CLOCK_FILE:-$PWD/var/billing-clock.json}"
export EMAIL_FILE_PATH="${EMAIL_FILE_PATH:-$PWD/var/emails}"
# The offline Stripe sandbox runs too, unless real Stripe keys are given.
export STRIPE_SANDBOX_PORT="${STRIPE_SANDBOX_PORT:-12111}"
PROCESSES="web worker beat stripe"
if [ -n "${STRIPE_SECRET_KEY:-}" ]; then
  PROCESSES="web worker beat"
else
  export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_sandbox_local_only}"
fi
# And the offline YooKassa sandbox, unless a real YooKassa shop is given
# (config/settings/local.py points YooKassa at it: shop 100500, its test key).
export YOOKASSA_SANDBOX_PORT="${YOOKASSA_SANDBOX_PORT:-12112}"
if [ -z "${YOOKASSA_SHOP_ID:-}" ]; then
  PROCESSES="$PROCESSES yookassa"
fi
PATH="$PWD/.venv/bin:$PATH"

mkdir -p var/broker/queue var/broker/processed var/broker/control var/static "$EMAIL_FILE_PATH"

# What the settings need to see what this run sees, for commands run from another terminal
# (config/settings/local.py reads it). Readable by this user only: DATABASE_URL may hold a
# password. Real Stripe keys are never written; give them to such commands as to this one.
DEMO_ENV_FILE="${DEMO_ENV_FILE:-var/demo.env}"
(umask 077 && {
  echo "# Written by \`make run\` on $(date -u '+%Y-%m-%d %H:%M UTC'); read by config.settings.local."
  for name in PORT HOST PUBLIC_BASE_URL LOG_LEVEL BILLING_CLOCK_FILE EMAIL_FILE_PATH \
    STRIPE_SANDBOX_PORT STRIPE_API_BASE STRIPE_WEBHOOK_SECRET YOOKASSA_SANDBOX_PORT DATABASE_URL CELERY_BROKER_URL \
    CHECKOUT_SUCCESS_URL CHECKOUT_CANCEL_URL; do
    if [ -n "${!name:-}" ]; then
      if [ "$name" = STRIPE_WEBHOOK_SECRET ] && [ -n "${STRIPE_SECRET_KEY:-}" ]; then
        continue  # a real endpoint's secret stays in the environment it was given in
      fi
      printf '%s=%s\n' "$name" "${!name}"
    fi
  done
} >"$DEMO_ENV_FILE")

python manage.py migrate --no-input -v 0
python manage.py seed_demo --base-url "$PUBLIC_BASE_URL"

# shellcheck disable=SC2086 # the process names are separate words
exec honcho --procfile Procfile.dev start $PROCESSES
