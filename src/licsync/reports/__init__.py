"""Pure renderers of plans: JSON (versioned), CSV and terminal tables."""
