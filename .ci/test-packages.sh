#!/usr/bin/env bash
# Installs the Debian packages the suite runs against when they are missing:
#   chromium       the browser tests (tests/ops/test_browser.py);
#   ffmpeg         the system ffmpeg, which the media tests run against besides the pinned one;
#   clamav-daemon  the clamd the upload-scanning tests start with signatures they write themselves
#                  (tests/clamav.py): nothing here downloads signatures, freshclam stays off.
# Without root or apt-get it only prints a note: the browser and scanning tests then skip themselves
# with a clear reason, and the media tests run on the pinned ffmpeg alone.
set -euo pipefail

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -x /usr/bin/ffmpeg ]] || missing+=(ffmpeg)
command -v clamd >/dev/null 2>&1 || [[ -x /usr/sbin/clamd ]] || missing+=(clamav-daemon)
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: ${missing[*]} missing and cannot be installed here (needs root and apt-get)." \
        "Install with: apt-get install ${missing[*]}"
    exit 0
fi
echo "Installing ${missing[*]} for the tests..."
export DEBIAN_FRONTEND=noninteractive
# Waits for another apt (unattended upgrades on a fresh machine, say) instead of failing on its lock.
apt_get=(apt-get -o DPkg::Lock::Timeout=600)
"${apt_get[@]}" update -qq
"${apt_get[@]}" install -y -qq "${missing[@]}" >/dev/null
# clamav-daemon's own services would start freshclam (a download) and a clamd without signatures.
for unit in clamav-freshclam clamav-daemon; do
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$unit" >/dev/null 2>&1 || true; fi
done
