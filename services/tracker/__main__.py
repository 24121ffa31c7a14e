"""`python -m services.tracker`: read settings, then serve."""

from __future__ import annotations

from services.runtime.service import serve
from services.runtime.settings import TrackerSettings
from services.tracker.app import tracker_spec

if __name__ == "__main__":
    serve(TrackerSettings, tracker_spec)
