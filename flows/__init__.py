"""Validate, clean and publish a folder of scraped documents as a versioned Parquet corpus.

Layers (README, "Architecture"): contracts (``models``, ``contracts``); pure stages
(``stages``); IO (``source``, ``output``); the engine (``engine``: plan, shard pass, corpus
step, execute), which never imports Prefect; and the Prefect side (``orchestration``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("corpus-pipeline")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

# Bumped whenever a change to the stages can change a published row; it is part of every row,
# of the manifest, and of the cache key, so a new pipeline version reprocesses everything.
PIPELINE_VERSION = f"{__version__}+stages.4"

__all__ = ["PIPELINE_VERSION", "__version__"]
