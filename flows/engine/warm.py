"""Imported by the shard workers' forkserver: what every worker needs, loaded once, before forks."""

import pyarrow as pa

from flows.stages.language import warm_up

# Each worker then starts with them (copy-on-write) instead of loading them again: ~0.6 s
# of CPU per worker while the CLI imports Prefect and the temporary server boots.
warm_up()
# pyarrow imports pandas (where installed) the first time it converts Python values, as
# every shard's tables do: ~0.3 s of CPU each worker would pay on its first shard.
pa.array([], pa.string())
