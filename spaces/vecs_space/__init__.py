"""The VECS Space, one module per concern: ``config`` (settings from ``VECS_*``), ``models`` (loaded once, shared by
every visitor), and one module per tab — ``live``, ``compare``, ``dataset`` — each with its handlers (called
directly by the tests) and the function that lays the tab out. ``app.py`` beside this package composes them."""
