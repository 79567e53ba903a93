"""posterlab.storage."""
