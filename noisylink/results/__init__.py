"""What a run produces: the row schema, the one results file, the manifest, the summary.

``row`` defines a results row (one per cell, image and trial) and its CSV form; ``file`` is
the only writer and reader of ``results.csv`` (``run``, ``rx`` and ``sweep`` alike);
``manifest`` writes ``manifest.json`` / ``sweep.json``; ``identity`` computes the columns that
say which settings and image a row belongs to; ``summary`` the per-cell table.
"""
