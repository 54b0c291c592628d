"""Icons used by the wizard (SVG, loaded with importlib.resources)."""
