"""posterlab.cli."""
