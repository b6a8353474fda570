"""How ``minisession serve`` writes its log: ``[log] format = "text"`` (one readable line per
record) or ``"json"`` (one JSON object per line, for log shippers).

A JSON line holds ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``exception``
when there is one, and, on access lines, the fields :data:`STRUCTURED_FIELDS` that the code
logging them passes in ``extra=``. Only those: any other attribute a record carries stays out,
so a value nobody chose to log cannot reach the file through this format.
"""

import json
import logging
import sys
from datetime import datetime, timezone

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: The ``extra=`` fields a JSON line carries when a record has them (the access log's).
STRUCTURED_FIELDS = ("app", "method", "path", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (JSON escapes every newline in a string)."""

    def fields(self, record: logging.LogRecord) -> dict:
        fields = {
            "time": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields.update((name, getattr(record, name)) for name in STRUCTURED_FIELDS
                      if hasattr(record, name))
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return fields

    def format(self, record: logging.LogRecord) -> str:
        # ASCII only: a stray surrogate in a message cannot break the line's encoding.
        return json.dumps(self.fields(record), default=str)


def setup_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr at ``level`` in ``log_format`` ("text" or "json")."""
    # Neither format names the caller, thread or process of a line: not looking them up
    # saves about 2.5 % of the instructions of a GET /session (bench: instructions).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])
    # Python's warnings too, so that a JSON log holds nothing but JSON lines.
    logging.captureWarnings(True)
