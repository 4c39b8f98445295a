"""Code that runs in the cloud: the Lambda asset."""

__version__ = "0.1.0"
