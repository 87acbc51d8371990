"""The ``odin`` command-line client: a thin client of the engine's HTTP API."""
