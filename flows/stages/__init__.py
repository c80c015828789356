"""Pure stage functions: no Prefect import, no file IO.

Each stage takes plain values and returns either its result or a :class:`Rejection`.
"""

from flows.stages.types import Reason, Rejection, Stage

__all__ = ["Reason", "Rejection", "Stage"]
