"""posterlab.faces."""
