"""The reports (registered in openline.reports.base.REPORTS, in page order)."""

from __future__ import annotations
