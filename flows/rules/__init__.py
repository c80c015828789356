"""Built-in boilerplate rule files (data, read with importlib.resources)."""
