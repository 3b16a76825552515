#!/usr/bin/env bash
# Installs Debian's clamav-daemon for tests/ops/test_upload_scanning.py when clamd is missing. The tests start
# their own clamd with a signature database they write: nothing here downloads signatures (freshclam stays off).
set -euo pipefail

if command -v clamd >/dev/null 2>&1 || [[ -x /usr/sbin/clamd ]]; then
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: clamd is missing and cannot be installed here (needs root and apt-get);" \
        "upload-scanning tests will be skipped. Install it with: apt-get install clamav-daemon"
    exit 0
fi
echo "Installing clamav-daemon for the upload-scanning tests..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends clamav-daemon
# The package's own services would start freshclam (a download) and a clamd without signatures.
for unit in clamav-freshclam clamav-daemon; do
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$unit" >/dev/null 2>&1 || true; fi
done
