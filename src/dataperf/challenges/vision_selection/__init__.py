"""Vision selection."""
