"""posterlab: what in a movie poster goes with how well the movie is rated."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.1.0"

__all__ = ["__version__", "results"]


def results(run: str | None = None, db: str | None = None, *, vectors: bool = True
            ) -> pd.DataFrame:
    """The results of a run as a DataFrame, one row per movie (for notebooks).

    ``run`` defaults to the most recent run, ``db`` to ``POSTERLAB_DATABASE_URL``.
    Columns are those of ``posterlab export``; with ``vectors`` the histograms and HOG
    come as numpy arrays.

    >>> import posterlab
    >>> df = posterlab.results(db="sqlite:///posterlab.db")  # doctest: +SKIP
    """
    from posterlab.config import load_settings
    from posterlab.storage import repository
    from posterlab.storage.engine import make_engine, session_factory
    from posterlab.storage.export import results_frame
    from posterlab.storage.schema import ensure_schema

    settings = load_settings(database_url=db)
    engine = make_engine(settings.database_url, readonly=True)
    try:
        ensure_schema(engine, create=False)
        with session_factory(engine)() as session:
            return results_frame(session, repository.find_run(session, run), vectors=vectors)
    finally:
        engine.dispose()
