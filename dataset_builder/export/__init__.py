"""The export: guillotined, sanitized, video-disjoint splits published as a Hub dataset."""
