"""compose.yaml, read as Docker Compose reads it (YAML with merge keys): the five services, a
configuration the LMS knows, commands that exist, one shared data volume, and only the labs'
entry point published. No Docker engine runs here: the stack itself is not started by tests
(README says so)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from lms.commands import lms as lms_commands
from lms.config import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
ROLES = ("web", "worker", "labs")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_the_stack_has_its_five_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"web", "worker", "labs", "postgres", "redis"}
    for backing in ("postgres", "redis"):
        assert compose["services"][backing]["healthcheck"]["test"]
        assert compose["services"][backing]["volumes"]  # the data outlives the container


def test_every_setting_is_one_the_lms_reads(compose: dict[str, Any]) -> None:
    for role in ROLES:
        environment = compose["services"][role]["environment"]
        settings = {key[4:] for key in environment if key.startswith("LMS_")}
        unknown = sorted(settings - set(DEFAULTS) - {"SECRET_KEY", "URL"})
        assert unknown == [], f"{role}: LMS_{unknown} is not a setting of lms.config"
        database = urlsplit(environment["LMS_DATABASE_URL"])
        assert database.scheme == "postgresql+psycopg" and database.hostname == "postgres"
        assert urlsplit(environment["LMS_QUEUE_URL"]).hostname == "redis"
        assert urlsplit(environment["LMS_LAB_HUB_URL"]).hostname == "labs"


def test_each_role_runs_a_command_that_exists(compose: dict[str, Any]) -> None:
    entrypoint = (ROOT / "docker" / "entrypoint.sh").read_text()
    for role in ROLES:
        command = compose["services"][role]["command"]
        if command[0] == "flask":
            assert command[1] == "lms" and command[2] in lms_commands.commands
        else:
            assert f"  {command[0]})" in entrypoint, f"{role}: entrypoint.sh has no {command[0]}"


def test_the_roles_share_one_data_volume_and_only_labs_is_published(
    compose: dict[str, Any],
) -> None:
    for role in ROLES:
        service = compose["services"][role]
        data_dir = Path(service["environment"]["LMS_DATA_DIR"])
        assert f"lms-data:{data_dir.parent}" in service["volumes"]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "lms-data" in compose["volumes"]
    published = {role for role, s in compose["services"].items() if s.get("ports")}
    assert published == {"labs"}
    [port] = compose["services"]["labs"]["ports"]
    assert port.endswith(":8000")  # the entry point's own port, not the hub's private API
    for role in ("worker", "labs"):  # they make sandboxes (namespaces, cgroups)
        assert compose["services"][role]["privileged"] is True
