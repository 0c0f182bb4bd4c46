"""The reports, registered in openline.reports.base.REPORTS in page order (the order of
these imports, kept from the import sorter)."""

from __future__ import annotations

# isort: off
from openline.reports.selectors import volume  # noqa: F401
from openline.reports.selectors import handling  # noqa: F401
from openline.reports.selectors import alerts  # noqa: F401
from openline.reports.selectors import risk  # noqa: F401
from openline.reports.selectors import form_fields  # noqa: F401
from openline.reports.selectors import sending  # noqa: F401
# isort: on
