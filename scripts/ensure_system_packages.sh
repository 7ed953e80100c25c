#!/usr/bin/env bash
# Make sure the Debian packages the test suite needs are installed:
# - chromium: the browser the end-to-end tests drive (tests/e2e), at /usr/bin/chromium;
#   Playwright's own browser downloads are not used;
# - gettext: xgettext and msgfmt, with which the translation tests check that every string
#   of ours has its Russian translation (accounts/tests/test_i18n.py).
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v msgfmt >/dev/null 2>&1 && command -v xgettext >/dev/null 2>&1 || missing+=(gettext)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_system_packages: missing ${missing[*]} and apt-get is not available; install them for the tests." >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure_system_packages: missing ${missing[*]}; run as root (or: sudo apt-get update && sudo apt-get install -y ${missing[*]})." >&2
  exit 1
fi

echo "ensure_system_packages: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
if [ ! -x /usr/bin/chromium ] || ! command -v msgfmt >/dev/null 2>&1; then
  echo "ensure_system_packages: apt-get ran but chromium or gettext is still missing." >&2
  exit 1
fi
echo "ensure_system_packages: $(/usr/bin/chromium --version 2>/dev/null); $(msgfmt --version | head -1)"
