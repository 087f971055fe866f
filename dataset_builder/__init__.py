"""The VECS data factory: synthetic corpus, ingestion, chunking, state store, pre-labels, export."""
