"""OpenAPI examples of `POST /api/video/search` (success examples hold the `data` part only)."""

from __future__ import annotations

from core.api.examples import QUOTA_ERRORS, error_example, error_response, request_example, success_example

JOB_ID = "34e08505-e2ba-4533-8fd3-45616472020d"

SEARCH_REQUEST = request_example("Search all videos", {"query": "when did the market flood", "limit": 5})
SEARCH_ONE_VIDEO = request_example("Search one video", {"query": "the sign on the door", "limit": 3, "jobId": JOB_ID})
FOUND = success_example(
    "Moments",
    {
        "moments": [
            {
                "jobId": JOB_ID,
                "start": 5.12,
                "end": 7.43,
                "text": "Heavy rain flooded the village market this morning.",
                "score": 0.7134,
                "origin": "captions",
                "thumbnailUrl": f"https://api.example.com/api/video/jobs/{JOB_ID}/thumbnail?timestamp=5.12",
            }
        ]
    },
    message="Found 1 moment",
)
ERRORS = {
    400: error_response(
        "The query is missing or too long, or `limit` is out of range.",
        error_example(
            "Missing query",
            message="query: This field is required.",
            code="validation_error",
            errors={"query": ["This field is required."]},
        ),
    ),
    404: error_response(
        "`jobId` is not one of your videos.",
        error_example("Unknown video", message="Video job not found.", code="not_found"),
    ),
    **QUOTA_ERRORS,
}
