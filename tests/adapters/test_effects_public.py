"""The public effects module names the same classes the drivers perform."""

from __future__ import annotations

from mailproto_adapters import _effects, effects


def test_public_names_are_the_private_classes() -> None:
    assert set(effects.__all__) == set(_effects.__all__)
    for name in effects.__all__:
        assert getattr(effects, name) is getattr(_effects, name)
