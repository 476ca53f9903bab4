"""Configuration engine: setting-block registry, levels, changesets and the SQLite store.

``registry`` declares every setting block (schema, levels, default, help); ``levels`` and
``resolve`` implement the machine > group > cluster > default inheritance; ``changeset``
and ``hlc`` define the unit of commit and replication; ``store`` persists all of it.
"""
