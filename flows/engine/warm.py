"""What every shard worker needs loaded, once, before the workers are forked from a process."""

import pyarrow as pa

from flows.stages.language import warm_up


def warm_workers() -> None:
    """Load it in this process (idempotent): the forkserver's preload calls it at import,
    ``corpus validate`` before it forks its workers."""
    # Each worker then starts with them (copy-on-write) instead of loading them again: ~0.6
    # s of CPU per worker while the CLI imports Prefect and the temporary server boots.
    warm_up()
    # pyarrow imports pandas (where installed) the first time it converts Python values, as
    # every shard's tables do: ~0.2-0.3 s of CPU each worker would pay on its first shard.
    pa.array([], pa.string())


warm_workers()
