"""OpenAPI examples of `/api/embeddings...` (the seed's create and search requests).

Success examples hold the `data` part only; the schema hook wraps them in the envelope. See
`core.api.examples`.
"""

from __future__ import annotations

from core.api.examples import QUOTA_ERRORS, request_example, success_example

DOCUMENT_ID = "5ef22d3d-23da-42b1-9e0e-99b26dc563f6"
TEXT = "Cats sleep for most of the day and purr when they are content."
QUERY = "Why do cats sleep so much and purr?"
# The user's own JSON: kept as sent (keys are not camelCased) and matched exactly by `filter`.
METADATA = {"source": "notes", "topic": "cats"}
MODEL = {"model": "text-embedding-3-small", "dimensions": 1536}

CREATE_REQUEST = request_example("Create", {"text": TEXT, "autoChunk": True, "metadata": METADATA})
CREATED = success_example(
    "Created",
    {"ids": [1], "documentId": DOCUMENT_ID, "chunks": 1, "tokens": 14, **MODEL, "unitsCharged": 1},
    message="Created 1 embedding",
    status=201,
)

SEARCH_REQUEST = request_example("Search", {"query": QUERY, "limit": 10, "threshold": 0.7})
SEARCH_FILTERED_REQUEST = request_example(
    "Search with a metadata filter",
    {"query": QUERY, "limit": 5, "threshold": 0.5, "filter": {"source": "notes"}},
)
_CREATED_AT = "2026-11-25T08:00:00Z"
FOUND = success_example(
    "Results",
    {
        "results": [
            {
                "id": 1,
                "documentId": DOCUMENT_ID,
                "chunkIndex": 0,
                "text": TEXT,
                "score": 0.83,
                "metadata": METADATA,
                "createdAt": _CREATED_AT,
            }
        ],
        "count": 1,
        "took": 14.25,
        **MODEL,
        "unitsCharged": 1,
    },
    message="Found 1 result",
)

_EMBEDDING = {
    "id": 1,
    "documentId": DOCUMENT_ID,
    "chunkIndex": 0,
    "text": TEXT,
    **MODEL,
    "tokenCount": 14,
    "metadata": METADATA,
    "createdAt": _CREATED_AT,
}
EMBEDDINGS = success_example("Embeddings", _EMBEDDING)
# The vector has `dimensions` numbers; the first three shown.
EMBEDDING = success_example("Embedding", {**_EMBEDDING, "vector": [0.0967, 0.0311, -0.0266]})

STATS = success_example(
    "Statistics",
    {
        "count": 1,
        "documents": 1,
        "totalTokens": 14,
        "models": [{**MODEL, "count": 1, "documents": 1, "tokens": 14}],
        "dimensions": [1536],
        "storageBytes": 6206,
        "vectorBytes": 6144,
        "textBytes": 62,
        "lastCreatedAt": _CREATED_AT,
    },
)

EMBEDDING_DELETED = success_example("Deleted", {"deleted": 1}, message="Embedding deleted")
BULK_DELETE_REQUEST = request_example("Delete by id", {"ids": [1, 2, 3]})
BULK_DELETED = success_example("Deleted", {"deleted": 3}, message="Deleted 3 embeddings")
DOCUMENT_DELETED = success_example("Deleted", {"deleted": 4, "documentId": DOCUMENT_ID}, message="Deleted 4 chunks")

# Create and search embed text: the quota and the AI rate limit apply.
ERRORS = QUOTA_ERRORS
