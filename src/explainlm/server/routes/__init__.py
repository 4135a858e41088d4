"""The API's routers, one small module per job kind (each a FastAPI ``APIRouter``)."""

from explainlm.server.routes import (
    audit,
    benchmark,
    compare,
    explain,
    generate,
    jobs,
    meta,
    predict,
    runs,
    whatif,
)

ROUTERS = [meta.router, predict.router, explain.router, generate.router, benchmark.router]
ROUTERS += [whatif.router, audit.router, compare.router, jobs.router, runs.router]

__all__ = ["ROUTERS"]
