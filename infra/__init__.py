"""The AWS CDK app (storage, API, batch pipeline, containers). Built in the infrastructure issue."""
