"""posterlab.tasks."""
