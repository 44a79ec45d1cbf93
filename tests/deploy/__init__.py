# A package so that the deployment fixtures of conftest.py can be package-scoped:
# one PgBouncer, one migrated template and one daphne for these tests, stopped when
# they are done instead of at the end of the whole run.
