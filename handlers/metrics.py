"""``GET /metrics`` on the metrics listener (``admin.metrics_listen``), never the public port."""

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.metrics import registry


class MetricsHandler(tornado.web.RequestHandler):
    """``GET /metrics`` in Prometheus' text format."""

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.write(generate_latest(self.application.settings["metrics_registry"]))


def make_metrics_app() -> tornado.web.Application:
    """The metrics listener's application: ``/metrics`` and nothing else (404)."""
    return tornado.web.Application([(r"/metrics", MetricsHandler)],
                                   metrics_registry=registry(), log_function=lambda _: None)
