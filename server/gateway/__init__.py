"""The built-in reverse proxy (issue 14): minisession in front of an app's own backend.

``routes``: which configured route a path belongs to and where it goes upstream; ``headers``:
which headers go up and come down; ``identity``: the identity headers (also /auth's);
``cookies``: the upstream's cookies (the one place the server-side jar plugs in);
``upstream``: the pooled HTTP client. No Tornado here: handlers/gateway.py is the glue.
"""
