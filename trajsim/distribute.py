"""Spreading work units over local threads or MPI ranks (README: "Runs over MPI ranks", "Your results are safe").

Without MPI, a thread pool runs the units (the kernels release the GIL).  Under ``mpirun`` with
more than one rank, rank 0 keeps a queue of units; a coordinator thread on rank 0 answers the
other ranks' requests one unit at a time (dynamic balancing), while rank 0's main thread takes
units from the same queue.  Every rank writes its own units' files; rank 0 merges at the end.
Waiting is done by polling with short sleeps, so an idle MPI rank does not spin a core.

mpi4py is imported only when the environment shows an MPI launch with more than one rank.
"""

from __future__ import annotations

import os
import threading
import time
import traceback

from .errors import TrajsimError, exit_status

#: Environment variables through which MPI launchers (MPICH/Hydra, Open MPI, PMIx, Slurm) tell a
#: process its rank and the number of ranks.
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
POLL_S = 0.001  # longest sleep between polls; polling starts at 20 µs and backs off to this


class WorkerFailed(RuntimeError):
    """A rank failed; the message names the rank and the cause."""


class PeerFailed(Exception):
    """Rank 0 failed in a step it runs alone and has said why; this rank exits with ``status``."""

    def __init__(self, status: int):
        super().__init__(f"rank 0 failed (exit status {status})")
        self.status = status


def launched_size() -> int:
    """Number of ranks the launcher started (1 outside mpirun)."""
    for var in _SIZE_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def launched_rank() -> int:
    for var in _RANK_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def world():
    """MPI.COMM_WORLD when launched with more than one rank, else None."""
    if launched_size() <= 1:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise TrajsimError(
            f"mpirun started {launched_size()} ranks but mpi4py is not installed; "
            "pip install 'trajsim[mpi]' (or mpi4py built against your cluster's MPI)"
        ) from None
    return MPI.COMM_WORLD


#: Pause before MPI_Abort so that the launcher forwards the line just printed: MPICH's Hydra
#: drops output still in flight when it tears the job down (seen as a missing error line).
ABORT_GRACE_S = 0.5


def abort(code: int) -> None:
    """Stop every rank (after a failure on one of them); no-op without MPI."""
    comm = world()
    if comm is not None:
        time.sleep(ABORT_GRACE_S)
        comm.Abort(code)


def on_root(comm, step):
    """Run ``step()`` on rank 0 alone and return its result on every rank.

    A failure on rank 0 is raised there and ends every other rank too (``PeerFailed`` with the
    same exit status), so no rank waits for a step that will never come.  Without MPI this is
    ``step()``.
    """
    if comm is None:
        return step()
    value, failure = None, None
    if comm.rank == 0:
        try:
            value = step()
        except BaseException as err:  # noqa: BLE001 - re-raised below, after telling the ranks
            failure = err
    status, value = comm.bcast((None if failure is None else exit_status(failure), value), root=0)
    if failure is not None:
        raise failure
    if status is not None:
        raise PeerFailed(status)
    return value


def _poll(ready) -> None:
    """Wait until ready() is true, sleeping 20 µs, 40 µs, ... up to POLL_S between checks:
    a prompt answer to a waiting rank, and no core spun by a rank that waits long."""
    pause = 2e-5
    while not ready():
        time.sleep(pause)
        pause = min(2 * pause, POLL_S)


def _wait(request):
    """Complete a non-blocking MPI request without spinning a core."""
    _poll(request.Test)


def run_local(next_unit, work, on_done, threads: int) -> None:
    """Run units on ``threads`` threads until ``next_unit(worker)`` returns None.

    ``worker`` names the thread ('thread 1'); ``next_unit`` and ``on_done`` must be
    thread-safe.  The first failure stops the hand-out and is raised once every thread has
    finished its current unit.
    """
    failure: list[BaseException] = []

    def loop(worker: str):
        while not failure and (unit := next_unit(worker)) is not None:
            try:
                work(unit)
                on_done(unit)
            except Exception as err:  # noqa: BLE001 - re-raised in the calling thread
                failure.append(err)
                return

    pool = [threading.Thread(target=loop, args=(f"thread {k}",), name=f"trajsim-{k}",
                             daemon=True) for k in range(threads)]
    for thread in pool:
        thread.start()
    try:
        for thread in pool:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        failure.append(KeyboardInterrupt())  # stop handing out; finished units are kept
        raise
    if failure:
        raise failure[0]


def run_mpi(comm, next_unit, work, on_done) -> None:
    """Run units over all ranks with dynamic balancing (call on every rank).

    ``next_unit`` and ``on_done`` matter on rank 0 only.  Raises WorkerFailed on rank 0 if any
    rank fails; the caller then stops every rank with ``abort``.
    """
    if comm.rank != 0:
        _worker(comm, work)
    else:
        _coordinate(comm, next_unit, work, on_done)
    _wait(comm.Ibarrier())


def _worker(comm, work) -> None:

    comm.send(("ready", None), dest=0)
    while True:
        _poll(lambda: comm.Iprobe(source=0))
        unit = comm.recv(source=0)
        if unit is None:
            return
        try:
            work(unit)
        except Exception as err:  # noqa: BLE001 - reported to rank 0, which stops the job
            comm.send(("failed", (unit, _cause(err))), dest=0)
            return
        comm.send(("done", unit), dest=0)


def _cause(err: Exception) -> str:
    where = traceback.extract_tb(err.__traceback__)[-1]
    return f"{type(err).__name__}: {err} ({os.path.basename(where.filename)}:{where.lineno})"


def _coordinate(comm, next_unit, work, on_done) -> None:
    from mpi4py import MPI

    failure: list[str] = []

    def hand_out(worker: str):
        return None if failure else next_unit(worker)

    def serve():
        active = comm.size - 1
        status = MPI.Status()
        while active:
            _poll(lambda: comm.Iprobe(source=MPI.ANY_SOURCE, status=status))
            source = status.Get_source()
            kind, payload = comm.recv(source=source)
            if kind == "failed":
                unit, cause = payload
                failure.append(f"rank {source} failed on point {unit.point} unit {unit.unit}: "
                               f"{cause}")
                active -= 1
                continue
            if kind == "done":
                on_done(payload)
            unit = hand_out(f"rank {source}")
            comm.send(unit, dest=source)
            if unit is None:
                active -= 1

    def serve_or_fail():
        try:
            serve()
        except Exception as err:  # noqa: BLE001 - a coordinator failure stops the job too
            failure.append(f"rank 0 failed while coordinating: {_cause(err)}")

    server = threading.Thread(target=serve_or_fail, name="trajsim-coordinator", daemon=True)
    server.start()
    while (unit := hand_out("rank 0")) is not None:
        try:
            work(unit)
            on_done(unit)
        except Exception as err:  # noqa: BLE001 - any failure stops the job with its cause
            failure.append(f"rank 0 failed on point {unit.point} unit {unit.unit}: {_cause(err)}")
            break
    while server.is_alive() and not failure:
        server.join(0.05)
    if failure:
        raise WorkerFailed(failure[0])
