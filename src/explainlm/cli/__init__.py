"""The ``explainlm`` command line (typer)."""
