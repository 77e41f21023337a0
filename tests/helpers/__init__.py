"""Helpers the tests share: paths, real servers, records. Fixtures stay in conftest.py."""
