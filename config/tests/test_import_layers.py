"""The apps import one way (.importlinter): the contracts hold, and a breach fails them.

`make test` runs `lint-imports` itself; these tests prove the contracts would catch what
docs/architecture.md forbids, on a copy of the code with one bad import added.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ["core", "accounts", "tariffs", "billing", "payments", "notifications", "ledger"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_of_the_code(tmp_path: Path) -> Path:
    for app in APPS:
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def _lint(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the venv's lint-imports, fixed arguments
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=directory,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(directory)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _add_line(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_code_keeps_every_contract(tmp_path):
    result = _lint(_copy_of_the_code(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "broken"),
    [
        ("tariffs/models.py", "import payments.models", "the apps import one way"),
        ("billing/services.py", "from notifications import notify", "the apps import one way"),
        # The ledger and notifications sit side by side: neither may import the other.
        ("notifications/notify.py", "import ledger.models", "the apps import one way"),
        ("ledger/selectors.py", "import notifications.models", "the apps import one way"),
        ("payments/models.py", "import ledger.models", "the apps import one way"),
        ("core/money.py", "import billing.models", "core imports no app of the service"),
        ("billing/selectors.py", "import stripe", "only the gateway packages import the provider SDKs"),
    ],
)
def test_an_import_against_the_layers_breaks_a_contract(tmp_path, module, bad_import, broken):
    code = _copy_of_the_code(tmp_path)
    _add_line(code / module, bad_import)

    result = _lint(code)

    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout


def test_a_hidden_import_inside_a_function_counts_too(tmp_path):
    code = _copy_of_the_code(tmp_path)
    _add_line(code / "billing/services.py", "def _sneaky():\n    from payments.models import Payment  # noqa")

    result = _lint(code)

    assert result.returncode != 0
    assert "billing.services -> payments.models" in result.stdout
