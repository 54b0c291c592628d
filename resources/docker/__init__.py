"""Dockerfile template for serving images (loaded with importlib.resources)."""
