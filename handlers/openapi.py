"""``GET /openapi.json``: the API's OpenAPI document (``docs/openapi.yaml``) as JSON."""

import functools
import json
from pathlib import Path

import yaml

from handlers.base import ApiHandler

#: The document people read and edit; this answer is made from it, so the two never differ.
OPENAPI_YAML = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"


@functools.cache
def openapi_json() -> bytes:
    """The document as JSON, read once (its YAML anchors and merge keys resolved)."""
    document = yaml.safe_load(OPENAPI_YAML.read_text(encoding="utf-8"))
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class OpenApiHandler(ApiHandler):
    """``GET /openapi.json``: for client generators, API explorers and schemathesis."""

    def get(self) -> None:
        self.finish(openapi_json())
