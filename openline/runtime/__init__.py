"""The engine room: processes, the webhook intake and the SQLite write gate.

Everything that makes one SQLite file fast across two processes lives here, with the figures
that justify it in bench/README.md; the domain apps never import it and never name its locks.

The inbound path, top to bottom:
1. ``intake.py``: the lean ASGI endpoint in front of Django. Verifies the provider's
   signature, parses with the provider's adapter and durably stores one InboundEvent per text
   (group commit) before it answers.
2. ``journal.py``: where the event loop puts a turn's webhooks when processing holds the
   write lock, so an acknowledgement never waits for it (SQLite only).
3. ``processing_loop.py``: the thread that takes waiting events, woken by intake.
4. ``openline/messaging/services/inbound.py``: the processing itself (contact, keywords and
   consent, conversation, message), then ``openline/messaging/events.py``: what the console
   and the widget receive, published after commit.

Around it: ``gate.py`` (writers take turns, intake first) and ``sqlite/`` (the database
backend that makes every transaction take its turn at BEGIN), ``bridge.py`` (the socket pair
between `openline run`'s web process and its worker child), ``worker.py`` (background tasks),
``scheduler.py`` (periodic jobs), ``layers.py`` (the embedded channel layer), ``cli.py``
(`openline run|web|worker|scheduler|demo|...`), ``demo.py``, ``health.py`` (/healthz) and
``simulator.py`` (the sandbox phone's way into intake)."""
