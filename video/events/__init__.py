"""Live progress of a video job as Server-Sent Events (`GET /api/video/jobs/{id}/events`)."""
