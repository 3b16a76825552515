"""Search inside videos: a video's caption cues and the text OCR finds on its frames become timed
"moments" in the owner's embeddings (`indexing`, one embeddings document per video, its id the
job's), and `POST /api/video/search` finds them again (`moments`, `views`)."""
