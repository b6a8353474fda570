"""The Tornado adapter: everything that knows how Tornado serves HTTP.

- ``httpserver``: the ``HTTPServer`` that ``minisession serve`` and the tests run, its options;
- ``connection_limits``: the capped accept loop, file-descriptor limits;
- ``draining``: requests in flight, the SIGTERM drain;
- ``client_address``: the client's address behind trusted proxies;
- ``log_redaction``: request bytes kept out of Tornado's log lines;
- ``tornado_compat``: the only module that touches Tornado's private members, and the check
  that the installed Tornado is one those uses were tested with.
"""
