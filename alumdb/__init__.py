"""AlumOutreach database toolkit: numbered SQL migrations for PostgreSQL.

The package is the engine behind ``tasks.py`` and ``noxfile.py``. Its functions
return data and raise :class:`alumdb.errors.AlumdbError`; they never print.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
