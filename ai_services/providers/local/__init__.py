"""Offline AI engines that run inside the web/worker process on CPU, one thread each.

Submodules are imported lazily by callers (each loads a model on first use):

- ``minilm``: all-MiniLM-L6-v2 sentence embeddings (pure numpy).
- ``piper_tts``: text-to-speech with Piper and the bundled "joe" US English voice.
- ``whisper_stt``: speech-to-text with faster-whisper and Whisper base.
- ``ocr``: local image analysis (RapidOCR text + Pillow image properties).
- ``provider``: the `local` provider, these engines behind the capability protocols.

Decoding and probing of audio uploads (PyAV) is `ai_services.audio`: every provider's uploads are
probed with it.
"""
