"""``GET /openapi.json``: the API's OpenAPI document (``handlers/openapi.yaml``, also at
``docs/openapi.yaml``) as JSON."""

import functools
import json
from pathlib import Path

import yaml

from handlers.base import ApiHandler

#: The document people read and edit (``docs/openapi.yaml`` links to it); this answer is made from
#: it, so the two never differ. Shipped inside the package, so an installed server has it too.
OPENAPI_YAML = Path(__file__).resolve().parent / "openapi.yaml"


@functools.cache
def openapi_json() -> bytes:
    """The document as JSON, read once (its YAML anchors and merge keys resolved)."""
    document = yaml.safe_load(OPENAPI_YAML.read_text(encoding="utf-8"))
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class OpenApiHandler(ApiHandler):
    """``GET /openapi.json``: for client generators, API explorers and schemathesis."""

    def get(self) -> None:
        self.finish(openapi_json())
