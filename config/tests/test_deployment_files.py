"""The image and the compose stack stay deployable.

No Docker engine runs here, so the Dockerfile and docker-compose.yml are checked as files
(hadolint, the parsed compose file), and the health probes they declare are run against
real gunicorn and Celery processes under production settings.
"""

import ast
import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"
PRODUCTION_SETTINGS = ROOT / "config" / "settings" / "production.py"
VENV_BIN = Path(sys.executable).parent

APP_SERVICES = ["web", "worker", "beat"]
LONG_RUNNING_SERVICES = ["postgres", "redis", *APP_SERVICES]
# The port every probe in the Dockerfile and the compose file expects gunicorn on.
CONTAINER_ADDRESS = "127.0.0.1:8000"
# A production-like host list: the probes must get past Django's host validation.
PRODUCTION_HOST = "billing.example.com"
PROBE_DEADLINE_SECONDS = 30

# `$$` is a literal dollar; `${NAME:-default}` and `${NAME-default}` fall back to the default.
# ${NAME}, ${NAME:-default}, ${NAME-default}, and ${NAME:?message} (required: no default).
COMPOSE_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?::?(?P<operator>[-?])(?P<default>[^}]*))?\}")


# --- Reading the files ---------------------------------------------------------------------


def compose_services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def resolve_locally(value: object) -> str:
    """Return a compose value as `docker compose` resolves it when the host sets nothing."""
    if value is None:
        # A variable with no value is passed on only when the host sets it.
        return ""
    return COMPOSE_INTERPOLATION.sub(_local_value, str(value))


def _local_value(match: re.Match[str]) -> str:
    if match.group(0) == "$$":
        return "$"
    if match.group("operator") == "?":
        return ""  # compose stops with the message: the host must set it
    return match.group("default") or ""


def required_from_host(service: dict[str, Any]) -> set[str]:
    """Return the variables compose refuses to start without (`${NAME:?message}`)."""
    raw = service.get("environment") or {}
    return {
        match.group("name")
        for value in raw.values()
        for match in COMPOSE_INTERPOLATION.finditer(str(value or ""))
        if match.group("operator") == "?"
    }


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    return {name: resolve_locally(value) for name, value in raw.items()}


def variables_production_requires() -> set[str]:
    """Return the variables config/settings/production.py reads with no default."""
    required: set[str] = set()
    for node in ast.walk(ast.parse(PRODUCTION_SETTINGS.read_text())):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        reads_environment = (isinstance(function, ast.Name) and function.id == "env") or (
            isinstance(function, ast.Attribute)
            and isinstance(function.value, ast.Name)
            and function.value.id == "env"
        )
        if not reads_environment or any(keyword.arg == "default" for keyword in node.keywords):
            continue
        first = node.args[0] if node.args else None
        assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
            f"production.py line {node.lineno}: name the variable as a string literal"
        )
        required.add(first.value)
    return required


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) for each instruction of the Dockerfile's final stage."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw_line in DOCKERFILE.read_text().splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            instructions = []
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_arguments(keyword: str) -> list[str]:
    return [arguments for instruction, arguments in dockerfile_instructions() if instruction == keyword]


def dockerfile_healthcheck() -> list[str]:
    """Return the exec-form command of the image's HEALTHCHECK."""
    (healthcheck,) = dockerfile_arguments("HEALTHCHECK")
    _, _, command = healthcheck.partition("CMD ")
    return json.loads(command)


# --- docker-compose.yml --------------------------------------------------------------------


def test_compose_defines_the_six_services():
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= compose_services().keys()


@pytest.mark.parametrize("name", LONG_RUNNING_SERVICES)
def test_long_running_service_has_a_healthcheck(name):
    healthcheck = compose_services()[name].get("healthcheck", {})
    assert not healthcheck.get("disable", False)
    assert healthcheck["test"][0] in {"CMD", "CMD-SHELL"}


def test_migrate_runs_once_when_postgres_is_healthy():
    migrate = compose_services()["migrate"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_starts_after_healthy_backing_services_and_finished_migrations(name):
    depends_on = compose_services()[name]["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["redis"]["condition"] == "service_healthy"
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"


def test_production_settings_require_the_secret_key_database_and_broker():
    # Guards the parser below: if it found nothing, the next test would prove nothing.
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} <= variables_production_requires()


@pytest.mark.parametrize("name", [*APP_SERVICES, "migrate"])
def test_app_service_gets_every_variable_production_settings_require(name):
    environment = service_environment(compose_services()[name])
    required = variables_production_requires()
    assert sorted(required - environment.keys()) == []
    # `docker compose up` must work on a laptop with nothing exported.
    assert sorted(variable for variable in required if not environment[variable]) == []


def test_compose_asks_the_host_only_for_stripes_keys():
    assert required_from_host(compose_services()["web"]) == {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"}


def test_compose_defaults_with_stripes_keys_pass_the_deployment_checks():
    # What the web container runs at start (config/wsgi.py refuses a configuration with
    # errors): the laptop defaults plus the two keys compose asks for must start.
    environment = service_environment(compose_services()["web"])
    environment |= {"STRIPE_SECRET_KEY": "sk_test_compose", "STRIPE_WEBHOOK_SECRET": "whsec_compose"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--tag", "billing", "--fail-level", "ERROR"],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            **environment,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_local_stack_serves_plain_http_from_the_image_gunicorn():
    web = compose_services()["web"]
    assert web["build"] == "."
    assert "command" not in web, "web runs the image's gunicorn CMD"
    assert [resolve_locally(port) for port in web["ports"]] == ["127.0.0.1:8000:8000"]
    assert service_environment(web)["DJANGO_SECURE_SSL_REDIRECT"] == "false"


def test_worker_healthcheck_pings_the_node_name_the_worker_takes():
    worker = compose_services()["worker"]
    assert "--hostname=celery@%h" in worker["command"]
    kind, command = worker["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    # In a container $HOSTNAME is what %h expands to.
    assert "inspect ping --destination celery@$HOSTNAME" in resolve_locally(command)


def test_beat_reads_its_schedule_from_the_database():
    beat = compose_services()["beat"]
    assert beat["command"][:4] == ["celery", "-A", "config", "beat"]
    assert "--scheduler=django_celery_beat.schedulers:DatabaseScheduler" in beat["command"]


# --- Dockerfile and .dockerignore ----------------------------------------------------------


def test_dockerfile_passes_hadolint():
    result = subprocess.run(  # noqa: S603 (a fixed command on a file of this repository)
        [str(VENV_BIN / "hadolint"), str(DOCKERFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_image_starts_from_python_311_slim():
    assert dockerfile_arguments("FROM") == ["python:3.11-slim"]


def test_image_runs_gunicorn_on_the_wsgi_app_as_a_non_root_user():
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    assert "ENTRYPOINT" not in keywords
    # The last USER of the stage is the one the container runs as.
    last_user = max(index for index, keyword in enumerate(keywords) if keyword == "USER")
    cmd = max(index for index, keyword in enumerate(keywords) if keyword == "CMD")
    assert last_user < cmd
    assert instructions[last_user][1].split(":")[0] not in {"root", "0"}
    command = json.loads(instructions[cmd][1])
    assert command[0] == "gunicorn"
    assert command[-1] == "config.wsgi:application"
    assert command[command.index("--config") + 1] == "config/gunicorn.conf.py"
    assert dockerfile_arguments("EXPOSE") == ["8000"]


def test_image_runs_production_settings_with_no_secret_baked_in():
    declared = " ".join(dockerfile_arguments("ENV") + dockerfile_arguments("ARG"))
    assert "DJANGO_SETTINGS_MODULE=config.settings.production" in declared
    assert "PYTHONDONTWRITEBYTECODE=1" in declared
    assert "PYTHONUNBUFFERED=1" in declared
    # A secret in ENV or ARG would outlive the build and let a misconfigured container start.
    for variable in [*variables_production_requires(), "AUTH_JWT_SECRET"]:
        assert variable not in declared


def test_image_collects_static_files_with_build_only_values():
    (collectstatic,) = [command for command in dockerfile_arguments("RUN") if "collectstatic" in command]
    assert "manage.py collectstatic --no-input" in collectstatic
    for variable in variables_production_requires():
        assert f"{variable}=" in collectstatic


def test_image_installs_dependencies_without_a_pip_cache():
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile_arguments("RUN")


def test_image_healthcheck_probes_healthz_with_python():
    command = dockerfile_healthcheck()
    assert command[:2] == ["python", "-c"]
    assert f"http://{CONTAINER_ADDRESS}/healthz/" in command[2]


def test_build_context_leaves_out_local_state_and_secrets():
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".git", ".venv", "var", ".env", "**/__pycache__", ".pytest_cache"} <= ignored


def test_gunicorn_takes_its_size_from_the_environment():
    command = ["--config", "config/gunicorn.conf.py", "--print-config", "config.wsgi:application"]
    result = subprocess.run(  # noqa: S603 (a fixed command on files of this repository)
        [str(VENV_BIN / "gunicorn"), *command],
        cwd=ROOT,
        env={**os.environ, "GUNICORN_WORKERS": "3", "GUNICORN_THREADS": "5"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    printed = dict(
        (name.strip(), value.strip())
        for name, _, value in (line.partition("=") for line in result.stdout.splitlines())
    )
    assert printed["bind"] == "['0.0.0.0:8000']"
    assert (printed["workers"], printed["threads"]) == ("3", "5")


# --- Production settings and the probes, run for real --------------------------------------


def production_environment(database_url: str, broker_url: str) -> dict[str, str]:
    """Return an environment like a production container's: only what it is given."""
    return {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": PRODUCTION_HOST,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CACHE_URL": broker_url,  # shared marks; check --deploy warns without (billing.W004)
        # Without these the deployment checks (config/checks.py) refuse to let it start.
        "AUTH_JWT_SECRET": secrets.token_urlsafe(32),
        "STRIPE_SECRET_KEY": "sk_test_deployment_files",
        "STRIPE_WEBHOOK_SECRET": "whsec_deployment_files",
        "BILLING_SERVICE_KEYS": secrets.token_urlsafe(32),
        "TRUSTED_PROXY_IPS": "127.0.0.1",
    }


def test_deploy_checks_pass_under_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_environment(
            "postgres://postgres@127.0.0.1:5432/billing_docker", "redis://127.0.0.1:6379/11"
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no issues" in result.stdout


@pytest.fixture(scope="module")
def live_environment(django_db_setup: None) -> dict[str, str]:
    """Return a production environment pointed at the test database and broker.

    Tests using it carry the django_db mark: pytest-django creates the test database only
    when some test in the session asks for it.
    """
    database = connection.settings_dict
    credentials = quote(database["USER"], safe="")
    if database["PASSWORD"]:
        credentials += ":" + quote(database["PASSWORD"], safe="")
    host = database["HOST"] or "localhost"
    port = database["PORT"] or "5432"
    database_url = f"postgres://{credentials}@{host}:{port}/{database['NAME']}"
    return production_environment(database_url, settings.CELERY_BROKER_URL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_probe(argv: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (probes copied from this repository's deployment files)
        argv, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False
    )


def probe_until_healthy(argv: list[str], environment: dict[str, str], log: Path) -> None:
    """Run a probe the way Docker does during start_period: until it passes or time runs out."""
    deadline = time.monotonic() + PROBE_DEADLINE_SECONDS
    while True:
        result = run_probe(argv, environment)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"probe still failing:\n{result.stderr}\nprocess log:\n{log.read_text()}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def gunicorn_address(
    live_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Run the image's gunicorn command on a free port under production settings."""
    (command,) = dockerfile_arguments("CMD")
    argv = json.loads(command)
    port = free_port()
    address = f"127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603 (the image's own command)
            [str(VENV_BIN / argv[0]), *argv[1:-1], "--bind", address, "--workers", "1", argv[-1]],
            cwd=ROOT,
            env=live_environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + PROBE_DEADLINE_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not listen on {address}:\n{log.read_text()}")
                time.sleep(0.2)
        # The first request loads the URLconf and every view behind it, which Docker's
        # start_period allows for; the probes are then what Docker runs on a started container,
        # with their own short time-outs, however busy the machine running this test is.
        first_request(address, live_environment)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)


def first_request(address: str, environment: dict[str, str]) -> None:
    """Send gunicorn its first request, with time enough to load the application."""
    host = environment.get("DJANGO_ALLOWED_HOSTS", "").split(",")[0].strip().lstrip(".")
    connection = http.client.HTTPConnection(address, timeout=PROBE_DEADLINE_SECONDS)
    try:
        connection.request(
            "GET", "/healthz/", headers={"Host": host if host not in ("", "*") else "localhost"}
        )
        connection.getresponse().read()
    finally:
        connection.close()


def python_probe(argv: list[str], address: str) -> list[str]:
    """Return a `python -c` probe aimed at gunicorn's test address instead of the container's."""
    assert argv[:2] == ["python", "-c"] and CONTAINER_ADDRESS in argv[2]
    return [sys.executable, "-c", argv[2].replace(CONTAINER_ADDRESS, address)]


@pytest.mark.e2e
@pytest.mark.django_db
def test_image_healthcheck_passes_against_production_gunicorn(gunicorn_address, live_environment):
    result = run_probe(python_probe(dockerfile_healthcheck(), gunicorn_address), live_environment)
    assert result.returncode == 0, result.stderr


@pytest.mark.e2e
@pytest.mark.django_db
def test_web_healthcheck_passes_with_database_and_broker_up(gunicorn_address, live_environment):
    probe = compose_services()["web"]["healthcheck"]["test"]
    assert probe[0] == "CMD"
    result = run_probe(python_probe(probe[1:], gunicorn_address), live_environment)
    assert result.returncode == 0, result.stderr


@pytest.mark.e2e
@pytest.mark.django_db
def test_beat_healthcheck_passes_with_database_and_broker_up(live_environment):
    kind, python, flag, code = compose_services()["beat"]["healthcheck"]["test"]
    assert (kind, python, flag) == ("CMD", "python", "-c")
    result = run_probe([sys.executable, "-c", code], live_environment)
    assert result.returncode == 0, result.stderr


@pytest.mark.e2e
@pytest.mark.django_db
def test_worker_healthcheck_passes_once_the_worker_is_up(live_environment, tmp_path):
    worker = compose_services()["worker"]
    command = [resolve_locally(argument) for argument in worker["command"]]
    # Docker sets HOSTNAME to the container's host name, which is what %h expands to.
    environment = {**live_environment, "HOSTNAME": socket.gethostname()}
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603 (the compose file's own command)
            [str(VENV_BIN / command[0]), *command[1:]],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _, shell_command = worker["healthcheck"]["test"]
        probe_until_healthy(["/bin/sh", "-c", resolve_locally(shell_command)], environment, log)
    finally:
        process.terminate()
        process.wait(timeout=60)
