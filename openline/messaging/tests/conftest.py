"""Messaging test helpers: the shift tests' clock and shift maker, for the auto-response
tests (whether an inbox is online comes from its shifts)."""

from __future__ import annotations

from openline.availability.tests.support import clock, make_shift  # noqa: F401
