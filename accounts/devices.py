"""Naming a device from its request headers."""

from __future__ import annotations

import re

from django.http import HttpRequest

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Dart/[\d.]+"), "Flutter app"),
    (re.compile(r"okhttp/[\d.]+"), "Android app"),
    (re.compile(r"CFNetwork/"), "iOS app"),
]
_OS = [
    (re.compile(r"Android ([\d.]+)"), "Android {0}"),
    (re.compile(r"iPhone OS ([\d_]+)"), "iPhone (iOS {0})"),
    (re.compile(r"iPad; CPU OS ([\d_]+)"), "iPad (iOS {0})"),
    (re.compile(r"Mac OS X ([\d_.]+)"), "macOS {0}"),
    (re.compile(r"Windows NT ([\d.]+)"), "Windows {0}"),
    (re.compile(r"Linux"), "Linux"),
]
_BROWSERS = [
    (re.compile(r"Edg/([\d]+)"), "Edge {0}"),
    (re.compile(r"Chrome/([\d]+)"), "Chrome {0}"),
    (re.compile(r"Firefox/([\d]+)"), "Firefox {0}"),
    (re.compile(r"Version/([\d]+).*Safari/"), "Safari {0}"),
]


def _printable_header(request: HttpRequest, name: str) -> str:
    """A header kept as a label: control characters (a NUL cannot even be stored by PostgreSQL)
    are dropped rather than refusing the sign-in."""
    return "".join(ch for ch in request.headers.get(name, "") if ch.isprintable()).strip()


def user_agent_from_request(request: HttpRequest) -> str:
    return _printable_header(request, "User-Agent")


def device_name_from_request(request: HttpRequest) -> str:
    explicit = _printable_header(request, "X-Device-Name")
    if explicit:
        return explicit[:200]
    return device_name_from_user_agent(user_agent_from_request(request))


def device_name_from_user_agent(user_agent: str) -> str:
    if not user_agent:
        return "Unknown device"
    for pattern, label in _PATTERNS:
        if pattern.search(user_agent):
            return label
    system = next(
        (fmt.format(*(g.replace("_", ".") for g in m.groups())) for p, fmt in _OS if (m := p.search(user_agent))), ""
    )
    browser = next((fmt.format(*m.groups()) for p, fmt in _BROWSERS if (m := p.search(user_agent))), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or user_agent.split(" ")[0][:200]
