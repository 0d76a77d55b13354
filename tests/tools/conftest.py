"""Fixtures of the tool tests (the converted adapters are session-wide, in
tests/conftest.py)."""
