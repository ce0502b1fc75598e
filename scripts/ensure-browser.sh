#!/usr/bin/env bash
# Makes sure Debian's Chromium is there for the browser test (tests/browser/).
# As root with apt-get: installs the `chromium` package when it is missing
# (running `apt-get update` first when the package lists are empty). Otherwise it
# does nothing; the browser test then skips itself and says why (pytest -ra).
# Playwright's own browser download is never used.
set -uo pipefail

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
  echo "Chromium not found at $CHROMIUM; the browser test will be skipped" \
       "(as root: apt-get install -y chromium)." >&2
  exit 0
fi
echo "Installing Debian's Chromium for the browser test..."
export DEBIAN_FRONTEND=noninteractive
if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$')" ] \
   || ! apt-cache show chromium >/dev/null 2>&1; then
  apt-get update -q || true
fi
if ! apt-get install -y -q chromium; then
  echo "Could not install chromium; the browser test will be skipped." >&2
fi
exit 0
