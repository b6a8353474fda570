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
import time
from datetime import datetime, timezone

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: The ``extra=`` fields a JSON line carries when a record has them (the access log's).
STRUCTURED_FIELDS = ("app", "method", "path", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (JSON escapes every newline in a string)."""

    @staticmethod
    def line_fields(created: float, level: str, logger: str, message: str) -> dict:
        """The fields every line has, in their order."""
        return {
            "time": datetime.fromtimestamp(created, timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level,
            "logger": logger,
            "message": message,
        }

    def fields(self, record: logging.LogRecord) -> dict:
        fields = self.line_fields(record.created, record.levelname, record.name,
                                  record.getMessage())
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


class DirectLog:
    """Lines written straight to serve's own handler, past logging's per-record machinery (a
    LogRecord, the walk up the logger tree, the handler's Formatter): the same bytes, for about
    4 % fewer instructions per GET /session (one access line each; bench: instructions).

    Only while that handler is the one place the line would go and nothing could change it on
    the way (no filter, no other handler, no logger that stops propagation): any other set-up
    (a test's capture handler, a program embedding the server) gets ``logger.log`` as usual.
    """

    def __init__(self, handler: logging.StreamHandler):
        self.handler = handler
        self._second: int | None = None
        self._stamp = ""  # the text format's time to the second, made once a second

    def sole_destination(self, logger: logging.Logger, level: int) -> bool:
        handler = self.handler
        if logger.filters or logger.disabled or handler.filters or level < handler.level:
            return False
        node = logger
        while node.parent is not None:
            if node.handlers or not node.propagate:
                return False
            node = node.parent
        return node.handlers == [handler]

    def write(self, logger: str, level: int, message: str, fields: dict) -> None:
        """The line ``handler`` would write for this record (its format: text or JSON)."""
        handler, formatter, now = self.handler, self.handler.formatter, time.time()
        level_name = logging.getLevelName(level)
        if isinstance(formatter, JsonFormatter):
            line = formatter.line_fields(now, level_name, logger, message)
            line.update((name, fields[name]) for name in STRUCTURED_FIELDS if name in fields)
            text = json.dumps(line, default=str)
        else:  # logging.Formatter(TEXT_FORMAT), as its formatTime() writes the time
            second = int(now)
            if second != self._second:
                self._stamp = time.strftime(formatter.default_time_format,
                                            formatter.converter(now))
                self._second = second
            text = f"{self._stamp},{int((now - second) * 1000):03d} {level_name} {logger}: {message}"
        with handler.lock:
            try:
                stream = handler.stream
                stream.write(text + handler.terminator)
                # stderr is line-buffered (Python 3.9+): the write above has flushed the line.
                if not getattr(stream, "line_buffering", False):
                    handler.flush()
            except RecursionError:
                raise
            except Exception:
                handler.handleError(logging.makeLogRecord({"name": logger, "msg": message}))


#: Set by setup_logging (serve, the admin commands); None when the server is embedded.
_direct: DirectLog | None = None


def log_with_fields(logger: logging.Logger, level: int, fields: dict, message: str,
                    *args) -> None:
    """``logger.log(level, message, *args, extra=fields)``, through :class:`DirectLog` when it
    writes the same line to the same place."""
    if not logger.isEnabledFor(level):
        return
    direct = _direct
    if direct is not None and direct.sole_destination(logger, level):
        direct.write(logger.name, level, message % args, fields)
    else:
        logger.log(level, message, *args, extra=fields)


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
    global _direct
    _direct = DirectLog(handler)
    # Python's warnings too, so that a JSON log holds nothing but JSON lines.
    logging.captureWarnings(True)
