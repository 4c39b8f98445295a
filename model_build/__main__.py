"""`python -m model_build` runs the `maas` CLI."""

from model_build.cli import main

main()
