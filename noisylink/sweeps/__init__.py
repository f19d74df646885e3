"""Sweeps: studies (grids of scenarios) run cell by cell on a process pool or Ray, resumable.

``study`` loads a study or a scenario file, ``store`` is the append-only results file that a
killed sweep resumes from, ``tasks`` runs one cell's remaining streams, ``engines`` runs the
tasks (``local`` process pool, ``ray``), and ``sweep`` ties them together.
"""
