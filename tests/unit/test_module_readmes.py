"""Each Terraform module's README lists exactly the inputs and outputs its .tf files declare."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "module_readmes.py"


def module_readmes(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_every_module_readme_matches_its_variables_and_outputs() -> None:
    result = module_readmes("--check")
    assert result.returncode == 0, result.stdout + result.stderr
    modules = [p for p in (ROOT / "terraform" / "modules").iterdir() if any(p.glob("*.tf"))]
    assert modules and all((m / "README.md").exists() for m in modules)


VARIABLES = """variable "layers" {
  type = map(object({
    zip_path       = string
    built_for_path = optional(string)
  }))
  description = "Layers by name: <name_prefix>-<layer> | one each."
}

variable "schedule" {
  type        = string
  description = "When runs start, e.g. \\"cron(0 2 * * ? *)\\"."
  default     = "cron(0 2 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate)\\\\(.+\\\\)$", var.schedule))
    error_message = "schedule must be cron(...) or rate(...)."
  }
}

variable "actions" {
  type        = list(string)
  description = "Actions."
  default = [
    "kms:Decrypt",
    "kms:GenerateDataKey",
  ]
}
"""


def test_tables_read_multiline_types_and_defaults_and_leave_the_prose_alone(tmp_path: Path) -> None:
    module = tmp_path / "demo"
    module.mkdir()
    (module / "variables.tf").write_text(VARIABLES)
    (module / "outputs.tf").write_text('output "arn" {\n  description = "ARN."\n  value       = "x"\n}\n')
    (module / "README.md").write_text("# demo\n\nWhat it does.\n")

    assert module_readmes("--modules", str(tmp_path), "--check").returncode == 1
    assert module_readmes("--modules", str(tmp_path)).returncode == 0
    readme = (module / "README.md").read_text()
    assert readme.startswith("# demo\n\nWhat it does.\n\n<!-- BEGIN")
    assert (
        "| `layers` | `map(object({zip_path = string, built_for_path = optional(string)}))` | required | "
        "Layers by name: \\<name_prefix>-\\<layer> \\| one each. |"
    ) in readme
    assert (
        '| `schedule` | `string` | `"cron(0 2 * * ? *)"` | When runs start, e.g. "cron(0 2 * * ? *)". |'
        in readme
    )
    assert '| `actions` | `list(string)` | `["kms:Decrypt", "kms:GenerateDataKey"]` | Actions. |' in readme
    assert "| `arn` | ARN. |" in readme
    assert "error_message" not in readme

    (module / "README.md").write_text(readme.replace("What it does.", "What it does, edited."))
    assert module_readmes("--modules", str(tmp_path), "--check").returncode == 0
    (module / "variables.tf").write_text(
        VARIABLES.replace('description = "Actions."', 'description = "Acts."')
    )
    stale = module_readmes("--modules", str(tmp_path), "--check")
    assert stale.returncode == 1 and "demo/README.md: out of date" in stale.stdout
