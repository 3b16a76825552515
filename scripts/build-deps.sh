#!/usr/bin/env bash
# pip builds hnswlib from source (it publishes no wheel for every Python), which needs a C++
# compiler and the Python headers. Installs them with apt-get when they are missing.
set -euo pipefail

python=${1:-python3}
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if command -v g++ >/dev/null 2>&1 && [ -f "$include/Python.h" ]; then
    exit 0
fi
version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if ! command -v apt-get >/dev/null 2>&1; then
    echo "Needed to build hnswlib: a C++ compiler (g++) and the headers of Python $version." >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
fi
echo "Installing a C++ compiler and the Python $version headers (to build hnswlib)..."
# Waits for another apt (unattended upgrades on a fresh machine, say) instead of failing on its lock.
apt_get=($sudo apt-get -o DPkg::Lock::Timeout=600)
"${apt_get[@]}" update -qq
"${apt_get[@]}" install -y -qq g++ "python$version-dev" >/dev/null || "${apt_get[@]}" install -y -qq g++ python3-dev >/dev/null
