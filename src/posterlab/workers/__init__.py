"""posterlab.workers."""
