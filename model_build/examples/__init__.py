"""Example models, trained for real on data this machine has."""
