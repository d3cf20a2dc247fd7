"""Step physics (temporary)."""
