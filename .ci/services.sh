#!/usr/bin/env bash
# Starts PostgreSQL and Redis on 127.0.0.1 when they are not already running (tests use both).
set -euo pipefail

# Waits for another apt (unattended upgrades on a fresh machine, say) instead of failing on its lock.
apt_get=(apt-get -o DPkg::Lock::Timeout=600)

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if ! command -v pg_ctlcluster >/dev/null; then
        "${apt_get[@]}" update -qq && "${apt_get[@]}" install -y -qq postgresql >/dev/null
    fi
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    if ! command -v redis-server >/dev/null; then
        "${apt_get[@]}" update -qq && "${apt_get[@]}" install -y -qq redis-server >/dev/null
    fi
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
