"""The batched attribution engine shared by every explanation method.

:class:`Engine` scores a classifier's target; :class:`~explainlm.generation.GenerationEngine`
(built on it) scores generated tokens. Both implement the method contract of
:mod:`explainlm.engine.contract`.
"""

from explainlm.engine.contract import Attribution, AttributionEngine
from explainlm.engine.core import Engine, Item

__all__ = ["Attribution", "AttributionEngine", "Engine", "Item"]
