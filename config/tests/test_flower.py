"""The task monitor: Flower in compose behind basic auth, and tasks that read well in it.

Flower shows each task's name and arguments to whoever is on call, so every task of the
service is named after its module and function and takes only ids (or a provider's name):
nothing there is an object's text, a card or a secret.
"""

import inspect
from pathlib import Path

import pytest
import yaml

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]
SERVICE_APPS = ("accounts", "tariffs", "billing", "payments", "notifications", "ledger", "core")
# The argument names a task may take: an id of a row, or the provider a job is run for.
ID_SUFFIXES = ("_id", "_pk")
OTHER_ARGUMENTS = {"provider"}


def flower_service() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["flower"]


def service_tasks() -> dict:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if name.split(".")[0] in SERVICE_APPS}


def test_flower_runs_from_the_service_image_and_asks_for_its_login():
    flower = flower_service()
    assert flower["build"] == "."
    assert flower["command"][:4] == ["celery", "-A", "config", "flower"]
    # No default: compose stops with this message instead of starting an open monitor.
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert flower["ports"] == ["127.0.0.1:${FLOWER_PORT:-5555}:5555"]
    # The image's own probe is gunicorn's, which this container does not run.
    assert "5555/healthcheck" in flower["healthcheck"]["test"][-1]


def test_the_service_has_tasks_to_check():
    assert {"billing.tasks.renew_subscription", "payments.tasks.send_refund"} <= service_tasks().keys()


@pytest.mark.parametrize("name", sorted(service_tasks()))
def test_each_task_is_named_after_its_function_and_takes_only_ids(name):
    task = service_tasks()[name]
    assert name == f"{task.run.__module__}.{task.run.__name__}"
    parameters = [p for p in inspect.signature(task.run).parameters if p != "self"]
    odd = [p for p in parameters if not p.endswith(ID_SUFFIXES) and p not in OTHER_ARGUMENTS]
    assert odd == [], f"{name} takes {odd}: pass ids, not objects or secrets"
