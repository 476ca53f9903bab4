"""Users and roles: the permission table, argon2 password hashing, login throttling."""
