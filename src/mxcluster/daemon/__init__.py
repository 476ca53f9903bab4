"""The composition root: ``mxcluster serve`` wires store, service, SSH and (later) mail,
replication and the API for one machine. Nothing else creates these objects."""
