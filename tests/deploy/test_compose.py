"""docker-compose.yml wires what the monitoring and database configuration expect: the
Prometheus folder where prometheus.yml finds its rules, the secrets its scrape and
Alertmanager's mail read, the deployment plan's PostgreSQL and PgBouncer settings."""

from __future__ import annotations

from pathlib import PurePosixPath

import yaml

from tests.deploy import support

COMPOSE = support.ROOT / "docker-compose.yml"
PROMETHEUS_DIR = support.ROOT / "monitoring" / "prometheus"
DJANGO_SERVICES = ("migrate", "web", "worker", "beat")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _mounts(service: dict) -> dict[str, str]:
    """container path -> host path (relative to the compose file)."""
    mounts = {}
    for volume in service.get("volumes", []):
        host, container, *_ = volume.split(":")
        mounts[container] = host
    return mounts


def _host_path(service: dict, container_path: str):
    """The repository file a container path maps to through a bind mount, if any."""
    path = PurePosixPath(container_path)
    for container, host in _mounts(service).items():
        if not host.startswith("./"):
            continue
        if path == PurePosixPath(container) or PurePosixPath(container) in path.parents:
            return support.ROOT / host / path.relative_to(container)
    return None


def _secret_paths(service: dict) -> set[str]:
    return {f"/run/secrets/{name}" for name in service.get("secrets", [])}


def test_it_mounts_the_prometheus_folder_so_the_relative_rule_files_resolve():
    prometheus = _compose()["services"]["prometheus"]
    config_path = "/etc/prometheus/prometheus.yml"  # the image's default --config.file
    assert _host_path(prometheus, config_path) == PROMETHEUS_DIR / "prometheus.yml"
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"]
    for rule_file in config["rule_files"]:
        in_container = PurePosixPath(config_path).parent / rule_file
        host = _host_path(prometheus, str(in_container))
        assert host is not None and host.is_file(), rule_file


def test_it_gives_prometheus_the_monitoring_token_file_its_scrape_reads():
    compose = _compose()
    prometheus = compose["services"]["prometheus"]
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    files = {job["authorization"]["credentials_file"] for job in config["scrape_configs"]
             if "credentials_file" in job.get("authorization", {})}
    assert files and files <= _secret_paths(prometheus)
    for name in prometheus["secrets"]:
        assert name in compose["secrets"]
    # The app reads the same secret, so the two tokens cannot drift apart.
    for name in DJANGO_SERVICES:
        service = compose["services"][name]
        token_file = service["environment"]["MONITORING_TOKEN_FILE"]
        assert token_file in files and token_file in _secret_paths(service)


def test_it_points_prometheus_at_the_alertmanager_service():
    compose = _compose()
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    targets = [t for am in config["alerting"]["alertmanagers"]
               for sc in am["static_configs"] for t in sc["targets"]]
    assert targets == ["alertmanager:9093"]
    alertmanager = compose["services"]["alertmanager"]
    assert "9093:9093" in alertmanager["ports"]
    # The image's default --config.file, and the SMTP password file it names.
    assert _host_path(alertmanager, "/etc/alertmanager/alertmanager.yml") \
        == PROMETHEUS_DIR / "alertmanager.yml"
    am_config = yaml.safe_load((PROMETHEUS_DIR / "alertmanager.yml").read_text(encoding="utf-8"))
    assert am_config["global"]["smtp_auth_password_file"] in _secret_paths(alertmanager)


def test_it_runs_postgresql_and_pgbouncer_with_the_deployment_plan_settings():
    services = _compose()["services"]
    command = " ".join(services["postgres"]["command"])
    for setting in ("shared_preload_libraries=pg_stat_statements",
                    "track_activity_query_size=2048", "log_min_duration_statement=1000",
                    "log_statement=mod"):
        assert setting in command
    init = {c["target"]: c["source"] for c in services["postgres"]["configs"]}
    source = init["/docker-entrypoint-initdb.d/10-pg_stat_statements.sql"]
    assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in \
        _compose()["configs"][source]["content"]
    pool = services["pgbouncer"]["environment"]
    assert {k: pool[k] for k in ("POOL_MODE", "DEFAULT_POOL_SIZE", "MAX_CLIENT_CONN",
                                 "RESERVE_POOL_SIZE")} == {
        "POOL_MODE": "transaction", "DEFAULT_POOL_SIZE": "20", "MAX_CLIENT_CONN": "1000",
        "RESERVE_POOL_SIZE": "5"}
    for name in DJANGO_SERVICES:
        assert "@pgbouncer:6432/" in services[name]["environment"]["DATABASE_URL"]


def test_it_backs_up_straight_from_postgresql_with_the_repository_scripts():
    tools = _compose()["services"]["db-tools"]
    assert tools["profiles"] == ["ops"]
    assert "@postgres:5432/" in tools["environment"]["DATABASE_DIRECT_URL"]
    for script in ("backup-db.sh", "restore-db.sh"):
        host = _host_path(tools, f"/scripts/{script}")
        assert host is not None and host.is_file() and host.stat().st_mode & 0o111
    assert tools["command"] == ["/scripts/backup-db.sh"]


def test_it_gives_the_django_services_the_anchor_key_and_their_own_anchor_volume():
    compose = _compose()
    assert "audit_anchor_key" in compose["secrets"]
    assert "auditanchors" in compose["volumes"]
    for name in DJANGO_SERVICES:
        service = compose["services"][name]
        environment = service["environment"]
        assert environment["AUDIT_ANCHOR_KEY_FILE"] in _secret_paths(service)
        assert "AUDIT_ANCHOR_KEY" not in environment  # a secret file, never inline
        # A named volume, not the database's and not a bind mount into the repository.
        assert _mounts(service)[environment["AUDIT_ANCHOR_DIR"]] == "auditanchors"
    for name, service in compose["services"].items():
        if name not in DJANGO_SERVICES:
            assert "auditanchors" not in _mounts(service).values(), name
