"""Apps talk to each other through public faces only.

Another app may import an app's `models` (the shapes of its rows), `services` (writes),
`selectors` (reads) and `events` (its seams), nothing else: what an app keeps in its other
modules can change without breaking a neighbour. Two exceptions, by design: `apps.core` is the
ground floor's infrastructure and all of it is public; `EXTRA_FACES` names the few other
modules an app offers, each with its reason. An app's `api`, `admin` and management commands
face people, not other apps: no other app imports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

APPS = Path(__file__).resolve().parents[2] / "apps"
FACES = {"models", "services", "selectors", "events"}
EXTRA_FACES = {
    # the tenancy gate every organization-scoped endpoint and console page passes
    "tenants": {"gate"},
    # per-request rate limits and buffered counters, on the hot path of every API call
    "plans": {"metering"},
    # configuration as code: a whole document of monitors validated and applied as one, which
    # the console's services-file import hands over before adding the other apps' sections
    "monitors": {"config_as_code"},
}
INFRASTRUCTURE = {"core"}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []


def _reached(module: str, names: list[str]) -> list[str]:
    """The module of another app an import reaches: `from apps.x import services` reaches
    `services`; `from apps.x.y import z` reaches `y`."""
    parts = module.split(".")
    if len(parts) > 2:
        return [parts[2]]
    return names or ["(the package)"]


def test_apps_import_each_other_only_through_their_faces():
    wrong = []
    for path in sorted(APPS.rglob("*.py")):
        rel = path.relative_to(APPS)
        if rel.parts[0] == "migrations" or "migrations" in rel.parts:
            continue
        own = rel.parts[0]
        for line, module, names in _imports(path):
            parts = module.split(".")
            if parts[0] != "apps" or len(parts) < 2 or parts[1] in (own, *INFRASTRUCTURE):
                continue
            other = parts[1]
            allowed = FACES | EXTRA_FACES.get(other, set())
            for reached in _reached(module, names):
                if reached not in allowed:
                    wrong.append(f"apps/{rel}:{line}: {module} ({reached})")
    assert not wrong, "imports past another app's faces:\n" + "\n".join(wrong)


def test_services_and_selectors_speak_the_projects_errors_not_drfs():
    """Services and selectors raise apps.core.errors (the API's handler renders them in the one
    error shape; the console shows them as messages), so they import nothing of DRF but the
    API-token model, which is stored data."""
    allowed = {"rest_framework.authtoken.models"}
    wrong = []
    for path in sorted(APPS.rglob("*.py")):
        rel = path.relative_to(APPS)
        if not ({"services", "selectors"} & {p.removesuffix(".py") for p in rel.parts}):
            continue
        for line, module, _ in _imports(path):
            if module.split(".")[0] == "rest_framework" and module not in allowed:
                wrong.append(f"apps/{rel}:{line}: {module}")
    assert not wrong, "services or selectors importing DRF:\n" + "\n".join(wrong)
