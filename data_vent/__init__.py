"""data-vent."""
