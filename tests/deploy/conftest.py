"""Fixtures of the deployment tests: PgBouncer, a migrated template database, daphne.

The application reaches PostgreSQL through a real PgBouncer in transaction
pooling mode, as in the compose deployment; backups and restores talk to
PostgreSQL directly, as the runbook says.
"""

from __future__ import annotations

import os

import pytest

from tests.deploy import support

# Secrets of the processes under test: long enough for production settings (DEBUG off).
SECRET_KEY = "deploy-tests-secret-key-" + "k" * 40
JWT_SECRET = "deploy-tests-jwt-secret-" + "j" * 40
ENCRYPTION_KEY = "deploy-tests-encryption-key-A-" + "e" * 30
OTHER_ENCRYPTION_KEY = "deploy-tests-encryption-key-B-" + "x" * 30
MONITORING_TOKEN = "deploy-tests-monitoring-token"
SMOKE_USERNAME = "smoke-test"
SMOKE_PASSWORD = "smoke-test-password-for-deploy-tests"


@pytest.fixture(scope="session")
def pgbouncer():
    bouncer = support.start_pgbouncer()
    yield bouncer
    support.stop_pgbouncer(bouncer)


@pytest.fixture(scope="session")
def migrated_template(pgbouncer):
    """A database migrated to head with `manage.py migrate` through PgBouncer (as the
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


def production_env(*, database_url: str, simulator_url: str, **overrides: str) -> dict[str, str]:
    """Environment of a production-like process (DEBUG off) against the simulated provider."""
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        pytest.fail("the deployment tests need REDIS_URL (the app shares its cache with "
                    "the tests, which clear it between tests)")
    return support.subprocess_env(
        DEBUG="false", ENVIRONMENT="production", SECRET_KEY=SECRET_KEY, JWT_SECRET=JWT_SECRET,
        ENCRYPTION_KEY=ENCRYPTION_KEY, ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false", MONITORING_TOKEN=MONITORING_TOKEN,
        DATABASE_URL=database_url, REDIS_URL=redis_url, CELERY_TASK_ALWAYS_EAGER="true",
        OPENAI_API_KEY="test-openai-key", ANTHROPIC_API_KEY="test-anthropic-key",
        OPENAI_BASE_URL=f"{simulator_url}/v1", ANTHROPIC_BASE_URL=simulator_url,
        AI_PROVIDER_TIMEOUT="5000", RATE_LIMIT_MAX="100000", LOG_LEVEL="warning",
        **overrides,
    )
