"""What an authenticator app would show: codes computed from a device's key (RFC 6238, with
django-otp's own TOTP), and helpers to let a device's throttle wait pass."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


def _totp(device: TOTPDevice) -> TOTP:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return totp


def app_code(device: TOTPDevice) -> str:
    """The code the person's app shows now, or the next step's if the device already took
    this step's code (each step's code works once; the device allows a step of drift)."""
    device.refresh_from_db()
    totp = _totp(device)
    now = totp.t()
    if now <= device.last_t:
        totp.time += device.step * (device.last_t + 1 - now)
    assert totp.t() <= now + device.tolerance, "no unused code left in the device's window"
    return f"{totp.token():0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    """Six digits that no step in the device's window would accept."""
    device.refresh_from_db()
    totp = _totp(device)
    window = set()
    for offset in range(-device.tolerance - 1, device.tolerance + 2):
        totp.drift = device.drift + offset
        window.add(totp.token())
    wrong = next(n for n in range(10**device.digits) if n not in window)
    return f"{wrong:0{device.digits}d}"


def let_throttle_pass(device: Any) -> None:
    """As if the throttle's wait after the last wrong code were over (the count stays)."""
    fresh = type(device).objects.get(pk=device.pk)
    if fresh.throttling_failure_timestamp is not None:
        fresh.throttling_failure_timestamp -= timedelta(days=1)
        fresh.save(update_fields=["throttling_failure_timestamp"])
