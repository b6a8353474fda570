"""Liveness and readiness probes for load balancers and orchestrators."""

from handlers.base import ApiHandler


class HealthHandler(ApiHandler):
    """``GET /healthz``: the process is up and serving (does not look at the store)."""

    def get(self) -> None:
        self.write_json({"status": "ok"})


class ReadyHandler(ApiHandler):
    """``GET /readyz``: the store answers, so requests can be served (503 otherwise)."""

    async def get(self) -> None:
        await self.ctx.ping_store()
        self.write_json({"status": "ready"})
