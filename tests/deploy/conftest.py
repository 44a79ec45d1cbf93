"""Fixtures of the deployment tests: PgBouncer, a migrated template database, daphne.

The application reaches PostgreSQL through a real PgBouncer in transaction
pooling mode, as in the compose deployment; backups and restores talk to
PostgreSQL directly, as the runbook says.
"""

from __future__ import annotations

import types

import pytest

from tests.deploy import support


@pytest.fixture(scope="package")
def pgbouncer():
    bouncer = support.start_pgbouncer()
    yield bouncer
    support.stop_pgbouncer(bouncer)


@pytest.fixture(scope="package")
def migrated_template(pgbouncer):
    """A database migrated to head by `manage.py migrate` through PgBouncer (as the
    compose `migrate` service does); tests clone it instead of migrating again."""
    name = support.unique_database_name("template")
    support.create_database(name)
    try:
        env = support.subprocess_env(DEBUG="true", DATABASE_URL=pgbouncer.url(name))
        support.manage("migrate", "--noinput", env=env)
        yield name
    finally:
        support.drop_database(name)


@pytest.fixture
def clone_database(migrated_template):
    """Make copies of the migrated template; each is dropped after the test."""
    created: list[str] = []

    def clone(label: str) -> str:
        name = support.unique_database_name(label)
        support.create_database(name, template=migrated_template)
        created.append(name)
        return name

    yield clone
    for name in created:
        support.drop_database(name)


@pytest.fixture(scope="package")
def deployment(pgbouncer, migrated_template, simulator, tmp_path_factory):
    """A production-like instance: daphne with DEBUG off, PostgreSQL through PgBouncer,
    Redis, both providers on the simulator, and the smoke-test account seeded."""
    name = support.unique_database_name("deployment")
    support.create_database(name, template=migrated_template)
    workdir = tmp_path_factory.mktemp("deployment")
    env = support.production_env(database_url=pgbouncer.url(name),
                                 simulator_url=simulator.url, NEONPRO_VAR_DIR=str(workdir))
    try:
        support.manage("seed_smoke_account", "--username", support.SMOKE_USERNAME,
                       env={**env, "SMOKE_TEST_PASSWORD": support.SMOKE_PASSWORD})
        server = support.start_daphne(env, workdir / "daphne.log")
        try:
            yield types.SimpleNamespace(url=server.url, database=name, server=server, env=env)
        finally:
            support.stop_daphne(server)
    finally:
        support.drop_database(name)
