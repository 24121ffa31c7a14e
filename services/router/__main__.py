"""`python -m services.router`: read settings, then serve."""

from __future__ import annotations

from services.router.app import router_spec
from services.runtime.service import serve
from services.runtime.settings import RouterSettings

if __name__ == "__main__":
    serve(RouterSettings, router_spec)
