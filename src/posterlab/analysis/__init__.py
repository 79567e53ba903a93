"""posterlab.analysis."""
