"""Captions of a video: its audio track transcribed by the configured speech-to-text provider
into timed cues (`transcribe`), stored as `VideoCaptionCue` rows and served as WebVTT (`webvtt`)."""
