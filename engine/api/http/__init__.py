"""The HTTP API: a FastAPI app over the engine interface, and its listeners (see :mod:`.server`)."""
