"""Validate, clean and publish a folder of scraped documents as a versioned Parquet corpus.

The package is laid out in three layers:

* ``flows.stages`` -- pure functions (no Prefect, no file IO), one module per stage;
* ``flows.io``, ``flows.publish`` -- the only modules that touch the file system;
* ``flows.tasks`` and ``flows.pipeline`` -- thin Prefect wrappers and the flow wiring.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("corpus-pipeline")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

# Bumped whenever a change to the stages can change a published row; it is part of every row,
# of the manifest, and of the cache key, so a new pipeline version reprocesses everything.
PIPELINE_VERSION = f"{__version__}+stages.3"

__all__ = ["PIPELINE_VERSION", "__version__"]
