"""What happens when a rank fails: the fault handling of :class:`~anyrnn.distributed.Sync`.

Faults
------
An exception on one rank while the others wait in a collective would leave them waiting
forever. :meth:`Sync.guard` therefore aborts the whole MPI job (``MPI_Abort``) after
writing the failing rank, the error and its traceback to stderr. Errors that every rank
raises together are not fatal: :meth:`Sync.together` gathers the ranks' local errors
(bad input on one rank) and raises one on every rank, and :meth:`Sync.collective` marks
an error that all ranks reach by a shared decision (a diverged loss).
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterator

__all__ = ["Faults"]

_COLLECTIVE = "_anyrnn_collective"


class Faults:
    """The fault handling of a :class:`~anyrnn.distributed.Sync`, which inherits it.

    Uses the Sync's ``rank``, ``size``, ``comm`` and ``allgather``.
    """

    @staticmethod
    def collective(exc: BaseException) -> BaseException:
        """Mark ``exc`` as raised by every rank together (:meth:`guard` lets it through)."""
        setattr(exc, _COLLECTIVE, True)
        return exc

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """Run a block of local work (no collectives inside) and raise its errors everywhere.

        If the block raises on any rank, every rank raises after it: the failing rank
        its own exception, the others one of the same built-in type (``ValueError``,
        ``TypeError``; ``RuntimeError`` otherwise) naming the rank and its message.
        """
        if self.size == 1:
            yield
            return
        error: Exception | None = None
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - reported to every rank below
            error = exc
        reports = self.allgather(None if error is None else (type(error).__name__, str(error)))
        failed = [(r, rep) for r, rep in enumerate(reports) if rep is not None]
        if not failed:
            return
        if error is not None:
            raise self.collective(error)
        r, (name, message) = failed[0]
        cls = {"ValueError": ValueError, "TypeError": TypeError}.get(name, RuntimeError)
        raise self.collective(cls(f"rank {r} of {self.size} failed: {name}: {message}"))

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Abort every rank (``MPI_Abort``) when the block raises on one rank alone.

        Exceptions marked by :meth:`collective` (raised on every rank) pass through, as
        does everything when there is one rank. Otherwise the rank writes its rank, the
        error and the traceback to stderr and aborts the communicator, so no other rank
        waits forever in a collective.
        """
        try:
            yield
        except Exception as exc:
            if self.size == 1 or getattr(exc, _COLLECTIVE, False):
                raise
            self.abort(exc)
            raise  # only if the MPI library returned from Abort

    def abort(self, exc: BaseException) -> None:
        """Write ``exc`` with this rank's number to stderr, then ``MPI_Abort`` the job."""
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(
            f"anyrnn: rank {self.rank} of {self.size} failed: {type(exc).__name__}: {exc}\n"
            f"{text}anyrnn: aborting all {self.size} ranks (MPI_Abort) so that none "
            "waits forever\n"
        )
        sys.stderr.flush()
        self.comm.Abort(1)
