"""Packaging: the PyInstaller spec, its build script, and what goes into the bundle."""
