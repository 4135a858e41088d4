"""The API's routers, one small module per job kind (each a FastAPI ``APIRouter``)."""

from explainlm.server.routes import benchmark, explain, generate, jobs, meta, predict, runs

ROUTERS = [meta.router, predict.router, explain.router, generate.router, benchmark.router]
ROUTERS += [jobs.router, runs.router]

__all__ = ["ROUTERS"]
