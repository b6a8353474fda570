"""Keep request bytes out of Tornado's log lines.

When Tornado cannot parse a request it logs why, at INFO, on ``tornado.general``, quoting the
offending bytes: ``Malformed HTTP message from 1.2.3.4: Invalid header value '<value>'``. That
value may be a session id (``Cookie``, ``X-Session``) or an admin key (``Authorization``) with a
NUL or a control character added, or an obs-fold, or a bad header name: anyone can make a
secret reach the log by sending it malformed. The same holds for every ``HTTPInputError`` Tornado
raises (tornado 6.5, pinned: ``httputil`` and ``http1connection``), some of which quote a value
without quotes (``Unsupported Transfer-Encoding <value>``), and for the ``Invalid body: ...``
warnings of handlers that do not stream their body (form bodies, whose part headers are parsed
the same way).

:class:`RedactRequestBytes`, a filter on Tornado's loggers, keeps only *what* was wrong: the
problem, as Tornado names it, from a list of the problems Tornado knows, never the text after
it. A message that matches none of them (a newer Tornado) becomes "unparseable request".
"""

import logging

from tornado.httputil import HTTPInputError

TORNADO_LOGGERS = ("tornado.general", "tornado.application", "tornado.access")

#: Tornado's problems, each followed in its message by nothing, or by the value it quotes.
PROBLEMS = (
    "Invalid header name",
    "Invalid header value",
    "Invalid header continuation",
    "first header line cannot start with whitespace",
    "no colon in header line",
    "Missing Host header",
    "Invalid Host header",
    "Multiple host headers not allowed",
    "Malformed HTTP request line",
    "Unexpected HTTP version",
    "Multiple unequal Content-Lengths",
    "Only integer Content-Length is allowed",
    "Content-Length too long",
    "invalid chunk size",
    "improperly terminated chunked request",
    "chunked body too large",
    "Message with both Transfer-Encoding and Content-Length",
    "Unsupported Transfer-Encoding",
    "Unsupported Content-Encoding",
    "encountered unconsumed gzip data without making progress",
    "multipart boundary not found",
    "no final boundary found",
    "multipart/form-data missing headers",
    "multipart/form-data missing name",
    "Invalid multipart/form-data",
    "Invalid x-www-form-urlencoded body",
)
#: Problems whose message goes on with the message of the error that caused them.
WRAPPERS = ("Invalid body: ", "Invalid multipart/form-data: ",
            "Invalid x-www-form-urlencoded body: ")
UNKNOWN = "unparseable request"


def describe(message: str) -> str:
    """What is wrong, in Tornado's words, without the request's bytes Tornado quoted."""
    for wrapper in WRAPPERS:
        if message.startswith(wrapper):
            return wrapper + describe(message[len(wrapper):])
    for problem in PROBLEMS:
        if message == problem or message.startswith((problem + " ", problem + ":")):
            return problem
    return UNKNOWN


class RedactRequestBytes(logging.Filter):
    """Rewrites a record that carries a request parsing error, keeping only the problem."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_redacted(arg) for arg in record.args)
        if record.exc_info and isinstance(record.exc_info[1], HTTPInputError):
            kind, error, traceback = record.exc_info
            record.exc_info = (kind, HTTPInputError(describe(str(error))), traceback)
            record.exc_text = None  # a cached rendering of the original
        return True


def _redacted(arg):
    if isinstance(arg, HTTPInputError):
        return describe(str(arg))
    if isinstance(arg, str) and arg.startswith(WRAPPERS):
        return describe(arg)  # web.py's "%d %s: %s" warning for an HTTPError's message
    return arg


def install() -> None:
    """Put the filter on Tornado's loggers (once, however often this is called)."""
    for name in TORNADO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactRequestBytes) for f in logger.filters):
            logger.addFilter(RedactRequestBytes())
