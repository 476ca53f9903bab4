"""``mxcluster setup``: create a machine's data directory, keys, database and admin."""
