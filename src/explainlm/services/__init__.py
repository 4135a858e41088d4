"""The service layer: one module per job kind (see :mod:`explainlm.services.base`)."""

from explainlm.services.base import (
    LocalModels,
    ModelProvider,
    ServiceContext,
    ServiceRequest,
    build_request,
)

__all__ = ["LocalModels", "ModelProvider", "ServiceContext", "ServiceRequest", "build_request"]
