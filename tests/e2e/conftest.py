"""Browser tests: the fixtures live in tests/browser.py, shared with the apps' own browser tests."""
