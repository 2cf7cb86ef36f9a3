"""The deployment files a team starts from (deploy/) stay usable: the Compose file is valid (by
``docker compose config`` where the Compose plugin exists, else by its structure), and every
command the systemd units, the Compose services and the Dockerfile start exists in the project:
the gunicorn application path imports, the ``manage.py`` subcommands are known, the programs are
installed in the virtual environment and the files the image copies are there."""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
# Where the units expect the code and the virtual environment (README "Deployment").
APP_DIR = "/opt/governance/app"
VENV_BIN = "/opt/governance/venv/bin"
WSGI_APP = "governance.wsgi:application"


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def _env_example_names() -> set[str]:
    names = set()
    for line in (DEPLOY / "env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _check_started_command(argv: list[str]) -> None:
    """A command a unit or a service starts: gunicorn with an importable application, or
    ``python manage.py <a known subcommand>``."""
    program = Path(argv[0]).name
    if program == "gunicorn":
        module_name, _, attribute = next(arg for arg in argv[1:] if not arg.startswith("-")).partition(":")
        assert f"{module_name}:{attribute}" == WSGI_APP
        assert callable(getattr(importlib.import_module(module_name), attribute))
        return
    assert re.fullmatch(r"python(3(\.\d+)?)?", program), argv
    manage_at = next(index for index, arg in enumerate(argv) if arg.endswith("manage.py"))
    assert argv[manage_at] in ("manage.py", f"{APP_DIR}/manage.py")
    assert (ROOT / "manage.py").is_file()
    assert argv[manage_at + 1] in get_commands(), f"manage.py has no subcommand {argv[manage_at + 1]!r}"


# --- Compose ---------------------------------------------------------------------------------------


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    return done.returncode == 0


@pytest.mark.skipif(not _docker_compose_available(), reason="the docker compose plugin is not installed")
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "deploy"
    folder.mkdir()
    shutil.copy(DEPLOY / "compose.yaml", folder / "compose.yaml")
    env = (DEPLOY / "env.example").read_text()
    (folder / ".env").write_text(env.replace("POSTGRES_PASSWORD=\n", "POSTGRES_PASSWORD=example\n"))
    done = subprocess.run(
        ["docker", "compose", "-f", str(folder / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_compose_services_are_complete_and_consistent() -> None:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    assert {"postgres", "redis", "mailpit", "migrate", "web", "worker"} <= set(services)
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file(), name
        for needed, condition in (service.get("depends_on") or {}).items():
            assert needed in services, (name, needed)
            wanted = condition["condition"]
            if wanted == "service_healthy":
                assert "healthcheck" in services[needed], (name, needed)
            elif wanted == "service_completed_successfully":
                assert services[needed].get("restart") == "no", (name, needed)
            else:
                assert wanted == "service_started", (name, wanted)
    for name in ("postgres", "redis", "mailpit", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("migrate", "web", "worker"):
        environment = services[name]["environment"]
        assert environment["DJANGO_ENV"] == "production"
        assert (
            environment["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in environment["DATABASE_URL"]
        )
        assert environment["REDIS_URL"].startswith("redis://redis:")
        assert services[name]["env_file"] == ".env"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert str(services["worker"]["deploy"]["replicas"]).startswith("${WORKER_REPLICAS")


def test_compose_commands_exist_in_the_project() -> None:
    services = _compose()["services"]
    assert _command(services["migrate"])[:3] == ["python", "manage.py", "migrate"]
    assert _command(services["worker"])[:3] == ["python", "manage.py", "qcluster"]
    assert _command(services["web"])[0] == "gunicorn"
    for name in ("migrate", "web", "worker"):
        _check_started_command(_command(services[name]))


def test_compose_holds_no_secret_and_every_variable_is_in_the_example() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    variables = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    assert variables, "the file reads its secrets from deploy/.env"
    assert variables <= _env_example_names()
    # Passwords and keys appear only as ${VARIABLES}, never as values.
    for name, service in _compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|_KEY", key):
                assert str(value).startswith("${"), (name, key)
            if key == "DATABASE_URL":
                assert re.match(r"postgres://[^:@]+:\$\{[A-Z_]+", value), (name, key)
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if re.match(r"^(SECRET_KEY|POSTGRES_PASSWORD|AUDIT_SIGNING_KEY)=", line):
            assert line.endswith("="), f"{line.split('=')[0]} must be left empty in the example"


# --- systemd ---------------------------------------------------------------------------------------


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values, with backslash-continued lines joined (systemd's syntax)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    logical = re.sub(r"\\\n\s*", " ", path.read_text())
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_units_are_there() -> None:
    assert {path.name for path in UNITS} == {
        "governance-web.service",
        "governance-worker@.service",
        "governance-migrate.service",
    }


@pytest.mark.parametrize("path", UNITS, ids=lambda path: path.name)
def test_unit_starts_a_command_that_exists(path: Path) -> None:
    unit = _unit(path)
    service = unit["Service"]
    assert unit["Unit"]["Description"]
    assert service["WorkingDirectory"] == [APP_DIR]
    assert service["EnvironmentFile"] == ["/etc/governance/governance.env"]
    assert service["User"] == ["governance"]
    (exec_start,) = service["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0].startswith(f"{VENV_BIN}/")
    # The program is one the project's installation puts in a virtual environment's bin/.
    assert (Path(sys.executable).parent / Path(argv[0]).name).exists(), argv[0]
    _check_started_command(argv)
    if "Install" in unit:
        assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_worker_unit_is_a_template_and_no_scheduler_unit_is_needed() -> None:
    worker = _unit(DEPLOY / "systemd" / "governance-worker@.service")
    assert "%i" in worker["Unit"]["Description"][0]
    assert shlex.split(worker["Service"]["ExecStart"][0])[-1] == "qcluster"
    # A task runs up to Q_TIMEOUT (300 s): stopping waits longer than that.
    assert int(worker["Service"]["TimeoutStopSec"][0]) > 300


# --- Dockerfile ------------------------------------------------------------------------------------


def test_dockerfile_copies_what_exists_and_starts_gunicorn() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    for sources in re.findall(r"^COPY (.+) \S+$", text, re.MULTILINE):
        for source in sources.split():
            assert (ROOT / source).exists(), source
    (cmd,) = re.findall(r"^CMD (\[.+\])$", text, re.MULTILINE)
    _check_started_command(yaml.safe_load(cmd))
