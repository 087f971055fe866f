"""Ingestion: sources → 16 kHz mono FLAC → exact 300 s + 5 s chunks in the state store."""
from .chunking import ChunkSpan, chunk_spans
from .pipeline import IngestOutcome, ingest

__all__ = ["ChunkSpan", "IngestOutcome", "chunk_spans", "ingest"]
