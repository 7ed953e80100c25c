#!/usr/bin/env bash
# Refresh the Russian catalogue of the admin and compile it (needs GNU gettext: msgmerge, xgettext, msgfmt).
#
#   bash scripts/update_translations.sh
#
# Then translate every new or fuzzy entry in locale/ru/LC_MESSAGES/django.po (remove the
# "fuzzy" flag once checked), run the script again to compile, and commit both django.po and
# django.mo: the service reads the committed .mo, so running it needs no gettext.
# accounts/tests/test_i18n.py fails while a string of ours has no Russian translation.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"

# Emails have their own en/ru templates; tests, benchmarks and local state hold no admin text.
# Keep this list in step with IGNORED in accounts/tests/test_i18n.py.
"$PYTHON" manage.py makemessages --locale ru --add-location file --no-obsolete \
  --ignore '.venv' --ignore 'var' --ignore 'bench' --ignore 'tests' --ignore 'node_modules' \
  --ignore 'test-artifacts' --ignore 'templates/emails'
"$PYTHON" manage.py compilemessages --locale ru --ignore '.venv'
