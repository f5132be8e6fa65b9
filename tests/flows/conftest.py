"""Flow tests share the session's Prefect API server (tests/conftest.py: prefect_api)."""
