"""Everything that touches the source folder: listing, metadata.jsonl, reading bytes."""
