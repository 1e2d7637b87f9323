"""The writer process of ``stage_run(..., background=True)`` (:mod:`skelrep.tracking.mlflow_run`).

Reads pickled messages from stdin (or, forked by the warm parent of
:mod:`skelrep.tracking.warm_writer`, from the stage's connection), written by the stage's :class:`BackgroundRunLogger`:
``("open", identity, stage, annotate)``, then ``("call", method, args, kwargs)`` for each logging
call, applied in order to the run that :func:`stage_run` opens here, and ``("close", finished)``.
A stage that did not finish (``finished`` false, or stdin closed without a close: the stage was
killed) leaves its run as a failed stage does in process: marked FAILED, without
``stage.<stage>: done``. Exit status 0 when everything was recorded (or nothing was asked).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys

from ..params import repo_root
from ..runtime import exit_now, setup_logging
from .mlflow_run import stage_run, tracking_uri


class _StageDidNotFinish(Exception):
    pass


def _messages(stream):
    """The stage's messages until its input ends: its pipe closed, or its connection to a warm
    writer closed or reset (a stage that exits without reading the writer's pid resets it)."""
    while True:
        try:
            yield pickle.load(stream)
        except (EOFError, ConnectionResetError):
            return


def _warm_up() -> None:
    """MLflow's imports and those of its SQL store (alembic, SQLAlchemy's mappers), before any
    message: a prestarted writer does this while the stage imports torch and validates its
    params. Nothing is opened or written here (a stage whose params are invalid writes nothing);
    the database is opened when the run is."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow  # noqa: F401

    if tracking_uri(repo_root()).split(":", 1)[0] in ("sqlite", "postgresql", "mysql", "mssql"):
        import sqlalchemy.orm
        from mlflow.store.tracking import sqlalchemy_store  # noqa: F401

        sqlalchemy.orm.configure_mappers()  # what opening the store does first (~0.45 s)


def main(stream=None) -> int:
    """Apply the messages of ``stream`` (default stdin; a warm parent's child: the stage's
    connection, :mod:`skelrep.tracking.warm_writer`)."""
    # the stage decides how its run ends (its close message, or the end of its input if it dies);
    # the writer runs in its own session, and ignores an interrupt sent to it all the same
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_logging()
    _warm_up()
    messages = _messages(stream or sys.stdin.buffer)
    first = next(messages, None)
    if first is None:
        return 0
    _, identity, stage, annotate = first
    try:
        with stage_run(identity, stage, annotate) as run:
            for message in messages:
                if message[0] == "close":
                    if not message[1]:
                        raise _StageDidNotFinish
                    break
                _, name, args, kwargs = message
                getattr(run, name)(*args, **kwargs)
            else:  # stdin closed without a close message: the stage died
                raise _StageDidNotFinish
    except _StageDidNotFinish:  # the run is closed as FAILED, like a stage failing in process
        pass
    return 0


if __name__ == "__main__":
    exit_now(main())  # the run is recorded and closed; the stage waits for this exit
