"""Shift calendar (normal and on-call shifts, one-off or recurring, sign-ups per occurrence),
the inbox's manual switch, and the online rule built from them."""
