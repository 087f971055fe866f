"""The local Argilla server: launcher (main venv), SQL search engine and clip server (server venv).

Kept import-light: the server venv imports ``annotation.server.search_engine`` through this package, and
that venv has none of the main one's packages (no dataset_builder, other typer / pydantic versions).
"""
