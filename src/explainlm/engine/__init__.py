"""The batched attribution engine shared by every explanation method."""

from explainlm.engine.core import Engine, Item

__all__ = ["Engine", "Item"]
