"""What the console's own views share. The helpers every staff page uses (``console_view``,
``paginate``, ``sentence``, ``is_htmx``) live in ``openline.core.web``."""

from __future__ import annotations

from django.conf import settings

HISTORY_LIMIT = 50
# Counting a body longer than this is pointless: the send service refuses it anyway.
MAX_COUNTED_CHARS = 4 * settings.OPENLINE_MAX_BODY_CHARS
