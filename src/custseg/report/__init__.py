"""Rendering of result objects into HTML and Markdown (no computation here)."""
