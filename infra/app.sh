#!/bin/sh
# The CDK app as cdk.json runs it: the project's environment, or one line saying how to make it.
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.installed ]; then
  echo "serverless-maas: no environment here yet: run 'make synth' (it creates .venv and synthesizes)" >&2
  exit 1
fi
exec .venv/bin/python -m infra.app
