"""Development helpers shared by the tests (``tests/``) and the benchmarks (``bench/``).

Not installed with the server (setup.cfg packages only ``server`` and ``handlers``): run what
uses them from the repository root, as ``python3 -m pytest`` and ``python3 -m bench.run`` do.

- ``ferretdb``: builds (once, cached) and runs FerretDB, the MongoDB-compatible server the
  MongoDB tests and benchmarks use; ``python3 -m devtools.ferretdb`` starts one by hand;
- ``processes``: real ``minisession serve`` and fake-platform processes, and the config
  files they are given (``server_config``, ``to_toml``).
"""
