"""OpenAPI examples of `/api/user/quota` and `/api/user/usage-stats` (`data` only; see
`core.api.examples`)."""

from __future__ import annotations

from core.api.examples import success_example

_QUOTA = {
    "limit": 100,
    "used": 25,
    "remaining": 75,
    "percentUsed": 25.0,
    "warning": False,
    "exhausted": False,
    "periodStart": "2026-11-01T00:00:00Z",
    "resetDate": "2026-12-01T00:00:00Z",
}
QUOTA = success_example("Quota", _QUOTA)


def _service(label: str, **figures: float | int | None) -> dict:
    usage = {
        "label": label,
        "requests": 0,
        "refunded": 0,
        "units": 0,
        "tokens": 0,
        "audioSeconds": 0.0,
        "characters": 0,
        "averageProcessingMs": None,
    }
    return {**usage, **figures}


USAGE_STATS = success_example(
    "Usage this period",
    {
        "period": {
            **_QUOTA,
            "daysInPeriod": 30,
            "daysElapsed": 24,
            "daysRemaining": 6,
            "elapsedPercent": 80.0,
        },
        "services": {
            "chat": _service("Chat", requests=9, units=12, tokens=4210, averageProcessingMs=1250),
            "whisper": _service("Speech-to-text", requests=2, units=3, audioSeconds=142.5, averageProcessingMs=3400),
            "tts": _service("Text-to-speech", requests=1, units=1, characters=180, averageProcessingMs=900),
            "vision": _service("Vision", requests=1, units=3, tokens=870, averageProcessingMs=2100),
            "video": _service("Video processing", requests=1, units=5, averageProcessingMs=8200),
            "embedding": _service("Embeddings", requests=1, refunded=1, units=1, tokens=310, averageProcessingMs=40),
        },
        "totals": {
            "requests": 15,
            "refunded": 1,
            "units": 25,
            "tokens": 5390,
            "audioSeconds": 142.5,
            "characters": 180,
        },
        # The real list has 30 days, oldest first; two are enough to show an entry.
        "daily": [
            {"date": "2026-11-24", "requests": 4, "units": 9},
            {"date": "2026-11-25", "requests": 2, "units": 3},
        ],
        "timezone": "Europe/London",
    },
)
