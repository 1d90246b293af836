"""Training commands: `python -m deflicker_impl.train <trainer> ...` (see __main__.py)."""
