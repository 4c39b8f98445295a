"""Pure serving core: manifest, tensor codec, runner, registry, store protocol, errors.

Nothing here imports boto3, fastapi or mangum, or reads the environment (a test enforces it).
"""
