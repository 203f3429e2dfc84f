"""deploy/docker-compose.yml and deploy/Dockerfile: they parse, wire the stack together and match the config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from satwatch.services.config import Settings
from satwatch.services.feed.config import load_feed_settings
from satwatch.services.models.modelcard import packaged_model_dir, shipped_or_folder
from tests.deploy.promql import DEPLOY

yaml = pytest.importorskip("yaml")


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict)
    return {k: str(v) for k, v in env.items()}


def test_compose_names_the_stack() -> None:
    services = compose()["services"]
    assert {"kafka", "detector", "producer", "feed", "alertmanager", "prometheus", "grafana"} <= services.keys()
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["alertmanager"]["image"].startswith("prom/alertmanager:")
    assert services["feed"]["image"] == services["detector"]["image"]
    assert "grafana" in services["grafana"]["image"]


def test_kafka_runs_kraft_and_is_reachable_as_kafka_9092() -> None:
    env = env_of(compose()["services"]["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(env["KAFKA_NODE_ID"] + "@")
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"  # a single node


def test_satwatch_services_run_the_cli_with_env_config() -> None:
    services = compose()["services"]
    detector, producer = services["detector"], services["producer"]
    assert detector["build"]["dockerfile"] == "deploy/Dockerfile"
    cmd = detector["command"]
    assert cmd[0] == "detect" and cmd[cmd.index("--bootstrap-servers") + 1] == "kafka:9092"
    assert cmd[cmd.index("--metrics-port") + 1] == "9108"
    assert producer["command"][:2] == ["produce", "simulator"]
    assert producer["command"][producer["command"].index("--speed") + 1] == "900"
    # The producer is the procedural simulator: the detector serves the set trained on it, named so that it
    # resolves inside the installed package wherever the container's working directory is.
    model_dir = env_of(detector)["SATWATCH_DETECTOR__MODEL_DIR"]
    assert model_dir == "onnx_models" and not Path(model_dir).is_absolute()
    assert shipped_or_folder(model_dir).resolve() == packaged_model_dir().resolve()
    for svc in (detector, producer):
        env = env_of(svc)
        assert env["SATWATCH_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["SATWATCH_METRICS__HOST"] == "0.0.0.0"  # Prometheus scrapes from another container


def test_compose_environment_is_valid_satwatch_config(monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_of(compose()["services"]["detector"])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert s.kafka.bootstrap_servers == "kafka:9092"
    assert s.metrics.host == "0.0.0.0" and s.metrics.port == 9108
    assert s.detector.state_dir == env["SATWATCH_DETECTOR__STATE_DIR"]
    assert s.kafka.frames_topic in compose()["services"]["kafka-init"]["command"][0]


def test_feed_runs_with_valid_env_config_and_posts_faults_to_the_stacks_alertmanager(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose()["services"]
    feed = services["feed"]
    assert feed["command"][0] == "feed"
    assert "--no-sink" not in feed["command"]  # this process also runs the incidents sink (faults to Alertmanager)
    env = env_of(feed)
    monkeypatch.delenv("SATWATCH_CONFIG", raising=False)
    for key in [k for k in os.environ if k.startswith("SATWATCH_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s, f = Settings(), load_feed_settings(None)  # both refuse unknown or misspelt SATWATCH_ names
    assert s.kafka.bootstrap_servers == "kafka:9092"
    # The feed reads the topic the detector writes and follows the detector's group for stream time.
    detector = env_of(services["detector"])
    assert s.kafka.alerts_topic == detector["SATWATCH_KAFKA__ALERTS_TOPIC"]
    assert s.kafka.group_id == detector["SATWATCH_KAFKA__GROUP_ID"]
    assert f.host == "0.0.0.0"  # Prometheus and the published port reach it from outside the container
    assert f"127.0.0.1:{f.port}:{f.port}" in feed["ports"]
    # The token comes from a compose variable with no default, like Grafana's password.
    assert f.token is not None and f.token.startswith("${") and ":?" in f.token
    # The store lives on the feed's volume.
    mounts = [v.split(":")[1] for v in feed["volumes"] if not v.startswith("./")]
    assert any(f.store.startswith(m + "/") for m in mounts), (f.store, mounts)
    # Faults go to the stack's Alertmanager, on the port it listens on.
    assert f.alertmanager_url == "http://alertmanager:9093"
    assert "alertmanager" in feed["depends_on"]
    assert "127.0.0.1:9093:9093" in services["alertmanager"]["ports"]


def test_alertmanager_mounts_the_shipped_config() -> None:
    am = compose()["services"]["alertmanager"]
    config_flag = next(a for a in am["command"] if a.startswith("--config.file="))
    target = config_flag.split("=", 1)[1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in am["volumes"] if v.startswith("./")}
    assert mounts[target] == "./alertmanager/alertmanager.yml"
    assert (DEPLOY / "alertmanager" / "alertmanager.yml").is_file()


def test_prometheus_sends_to_alertmanager_and_scrapes_the_feed() -> None:
    services = compose()["services"]
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    am_targets = [t for am in prom["alerting"]["alertmanagers"] for s in am["static_configs"] for t in s["targets"]]
    assert am_targets == ["alertmanager:9093"]
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    feed_targets = [t for s in jobs["satwatch-feed"]["static_configs"] for t in s["targets"]]
    assert feed_targets == [f"feed:{env_of(services['feed'])['SATWATCH_FEED__PORT']}"]
    # The rules watch this job name.
    rules = (DEPLOY / "prometheus" / "rules.yml").read_text()
    assert 'up{job="satwatch-feed"}' in rules


def test_prometheus_scrapes_the_satwatch_services_and_mounts_the_rules() -> None:
    services = compose()["services"]
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for s in job["static_configs"] for t in s["targets"]}
    detector_port = services["detector"]["command"][services["detector"]["command"].index("--metrics-port") + 1]
    producer_port = services["producer"]["command"][services["producer"]["command"].index("--metrics-port") + 1]
    assert {f"detector:{detector_port}", f"producer:{producer_port}"} <= targets
    assert prom["rule_files"] == ["rules.yml"]
    mounts = [v.split(":")[1] for v in services["prometheus"]["volumes"] if v.startswith("./")]
    assert "/etc/prometheus/rules.yml" in mounts and "/etc/prometheus/prometheus.yml" in mounts


def test_bind_mounts_point_at_files_in_deploy() -> None:
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"


def test_dockerfile_installs_satwatch_on_python_311_slim() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert froms and all(f == "python:3.11-slim" for f in froms)
    assert "pip wheel" in text and "pip install" in text
    assert 'ENTRYPOINT ["satwatch"]' in text
    root = DEPLOY.parent
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for src in line.split()[1:-1]:
                if "*" not in src:
                    assert (root / src).exists(), f"Dockerfile copies missing {src}"


def test_published_ports_bind_to_loopback_and_nothing_has_a_default_password() -> None:
    services = compose()["services"]
    published = [(name, p) for name, svc in services.items() for p in svc.get("ports", [])]
    assert published and all(str(p).startswith("127.0.0.1:") for _, p in published), published
    grafana = env_of(services["grafana"])
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert env_of(services["feed"])["SATWATCH_FEED__TOKEN"].startswith("${FEED_TOKEN:?")
    assert "--web.enable-lifecycle" not in services["prometheus"]["command"]
