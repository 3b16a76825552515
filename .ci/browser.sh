#!/usr/bin/env bash
# Installs Debian's chromium for tests/ops/test_browser.py when it is missing. Without root or apt-get it only
# prints a note: the browser test then skips itself with a clear reason.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: /usr/bin/chromium is missing and cannot be installed here (needs root and apt-get);" \
        "browser tests will be skipped. Install it with: apt-get install chromium"
    exit 0
fi
echo "Installing chromium for the browser tests..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium
