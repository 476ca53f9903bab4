"""The service layer: one machine's configuration, sessions, staging, commit and users.

The shell, the API and (later) replication all go through ``Machine`` so that
validation, audit and errors exist once.
"""
