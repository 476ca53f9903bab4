"""The ``mxcluster`` console script: setup, serve and the cli client."""
