"""Where the batch runs: local threads (``grading.grade_all``'s default) or a Dask cluster.

``dask_executor`` connects to a scheduler, checks that the scheduler and every worker can grade
(``autograder`` importable; for the judge, workers that may start processes), and yields a
``concurrent.futures``-style executor for ``grade_all``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

from .errors import KitError

log = logging.getLogger(__name__)


class ExecutorError(KitError):
    """The requested executor cannot be used (unreachable or unfit Dask cluster)."""


def _cannot_grade_here(engine: str) -> list[str]:
    """Why this Dask process cannot grade; run on the scheduler and every worker."""
    import importlib.util
    import multiprocessing

    problems = []
    if importlib.util.find_spec("autograder") is None:
        problems.append("cannot import autograder")
    if engine == "judge" and multiprocessing.current_process().daemon:
        problems.append("is a daemonic process, which cannot start the judge's evaluators")
    return problems


@contextmanager
def dask_executor(scheduler: str, *, engine: str, timeout: float = 10.0) -> Iterator[Executor]:
    """An executor on the Dask cluster at ``scheduler``, checked before use, closed after.

    Raises:
        ExecutorError: distributed is missing, the scheduler cannot be reached, or a process of
            the cluster cannot grade.
    """
    try:
        from distributed import Client
        from distributed.comm import get_address_host_port, parse_address
    except ImportError as exc:
        raise ExecutorError(
            f"grading on a Dask scheduler needs dask.distributed ({exc}); "
            "install it with `pip install -r requirements.txt`"
        ) from None
    try:
        if parse_address(scheduler)[0] != "inproc":  # inproc: a LocalCluster in this process
            get_address_host_port(scheduler)  # malformed: ValueError before any Client exists
        client = Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, ValueError) as exc:
        raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        problems = {"scheduler": client.run_on_scheduler(_cannot_grade_here, engine)}
        problems |= {f"worker {w}": p for w, p in client.run(_cannot_grade_here, engine).items()}
        if any(problems.values()):
            raise ExecutorError(
                f"the Dask cluster at {scheduler} cannot grade: "
                + "; ".join(f"{k} {', '.join(p)}" for k, p in problems.items() if p)
                + ". Start `dask scheduler` and `dask worker` from the repository root with "
                "PYTHONPATH=$PWD and DASK_DISTRIBUTED__WORKER__DAEMON=False"
            )
        workers = len(client.scheduler_info().get("workers", {}))
        log.info("grading on the Dask scheduler at %s (%d workers)", scheduler, workers)
        if not workers:
            log.warning("no Dask workers at %s yet; grading starts when one joins", scheduler)
        yield client.get_executor(pure=False)
    finally:
        client.close()
