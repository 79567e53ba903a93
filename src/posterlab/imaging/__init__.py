"""posterlab.imaging."""
