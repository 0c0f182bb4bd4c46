from __future__ import annotations

from ninja import NinjaAPI

api = NinjaAPI(title="OpenLine API", version="1")
