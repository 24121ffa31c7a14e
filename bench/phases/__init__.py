"""The bench's phases, one module each; bench/run.py runs them in order."""
