#!/usr/bin/env bash
# Make sure the browser the end-to-end tests drive (tests/e2e) is installed: Debian's
# Chromium at /usr/bin/chromium. Playwright's own browser downloads are not used.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: $CHROMIUM is missing and apt-get is not available; install Chromium there for the e2e tests." >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure_chromium: $CHROMIUM is missing; run as root (or: sudo apt-get update && sudo apt-get install -y chromium)." >&2
  exit 1
fi

echo "ensure_chromium: installing chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure_chromium: apt-get installed chromium but $CHROMIUM is still missing." >&2
  exit 1
fi
echo "ensure_chromium: $("$CHROMIUM" --version 2>/dev/null)"
