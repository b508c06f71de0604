"""Fixtures shared by the zoo tests."""

import pytest

import zoo


@pytest.fixture
def scratch_registry():
    """Removes the presets a test registers, so other tests see only the project's."""
    before = set(zoo.registry._REGISTRY)
    yield
    for name in set(zoo.registry._REGISTRY) - before:
        del zoo.registry._REGISTRY[name]
