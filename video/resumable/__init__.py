"""Resumable video uploads (tus 1.0 with the creation, termination and expiration extensions) at
`/api/video/uploads/`: an upload grows chunk by chunk in storage and becomes a video job, exactly
as a multipart upload does, once its last byte is in."""
