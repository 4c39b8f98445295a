"""Batch inference on storage events: a file under inputs/ -> results under outputs/."""
