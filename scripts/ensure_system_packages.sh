#!/usr/bin/env bash
# Make sure the Debian packages the test suite needs are installed:
# - chromium: the browser the end-to-end tests drive (tests/e2e), at /usr/bin/chromium;
#   Playwright's own browser downloads are not used;
# - gettext: xgettext and msgfmt, with which the translation tests check that every string
#   of ours has its Russian translation (accounts/tests/test_i18n.py).
set -euo pipefail

find_missing() {
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v msgfmt >/dev/null 2>&1 && command -v xgettext >/dev/null 2>&1 || missing+=(gettext)
}

find_missing
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

# Two test runs started together must not both call apt-get (the second fails on dpkg's lock):
# the first installs, the other waits for it and then finds nothing missing.
exec 9>/tmp/billing-ensure-system-packages.lock
flock -w 900 9
find_missing
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "ensure_system_packages: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
# Any other apt-get on the machine (an unattended upgrade, say) is waited for, not failed on.
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
find_missing
if [ ${#missing[@]} -ne 0 ]; then
  echo "ensure_system_packages: apt-get ran but ${missing[*]} is still missing." >&2
  exit 1
fi
echo "ensure_system_packages: $(/usr/bin/chromium --version 2>/dev/null); $(msgfmt --version | head -1)"
