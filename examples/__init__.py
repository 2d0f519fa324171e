"""Example material for the app (a regular package, so that `examples.clips` always resolves here)."""
