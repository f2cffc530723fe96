"""Whether the `holidays` package has a calendar for a `US` or `US-CA` style code, remembered on disk.

The policy loader checks every country code of a `holidays` change lock. Importing the `holidays` package
costs about 0.1 s of CPU, and the dag-processor re-parses the DAG file, and so the policy, every cycle
(issue 18). The package's own verdict is therefore kept in a small JSON file, keyed by the installed
package's files (path, size and modification time of its `__init__` and `registry` modules): an upgrade
of `holidays` starts a new file, so a verdict never outlives the package that gave it. A cache that cannot
be read or written is ignored, and the package is asked, as without the cache.

The cache lives in `$PDM_CACHE_DIR` (default `~/.cache/pdm-orchestrator`), beside the classifier's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

_VERDICTS: dict[str, str | None] = {}


def calendar_problem(country: str) -> str | None:
    """Why `holidays` has no calendar for `country` (`US`, `US-CA`), or None when it has one."""
    if country in _VERDICTS:
        return _VERDICTS[country]
    cache_file = _cache_file()
    stored = _read(cache_file) if cache_file else {}
    if country in stored:
        verdict = stored[country]
    else:
        verdict = _ask_package(country)
        if cache_file:
            _write(cache_file, {**stored, country: verdict})
    _VERDICTS[country] = verdict
    return verdict


def _ask_package(country: str) -> str | None:
    """The package's own answer: loads the country's calendar class (and the whole package once)."""
    import holidays
    from holidays.registry import COUNTRIES

    code, _, subdivision = country.partition("-")
    if not subdivision and any(code in codes[1:] for codes in COUNTRIES.values()):
        return None  # known from the registry alone: no calendar (and not all 250 countries) loaded
    try:
        holidays.country_holidays(code, subdiv=subdivision or None, years=[])
    except NotImplementedError as exc:
        return f"no public holiday calendar for {country!r}: {exc} (ISO codes such as US, GB, US-CA)"
    return None


def cache_dir() -> Path:
    """Where the project's caches live: `$PDM_CACHE_DIR`, else `~/.cache/pdm-orchestrator`."""
    configured = os.environ.get("PDM_CACHE_DIR")
    return Path(configured or "~/.cache/pdm-orchestrator").expanduser()


def package_identity() -> str | None:
    """The installed `holidays` package's files (path, size, modification time), or None when not found.

    Found without importing the package (which is what costs)."""
    try:
        spec = importlib.util.find_spec("holidays")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    package = Path(spec.origin).parent
    identity = []
    for name in ("__init__.py", "registry.py"):
        try:
            stat = (package / name).stat()
        except OSError:
            return None
        identity.append(f"{package / name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "\n".join(identity)


def _cache_file() -> Path | None:
    """The verdict file of the installed package, or None when the package's files cannot be found."""
    identity = package_identity()
    if identity is None:
        return None
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
    return cache_dir() / f"holiday-codes-{digest}.json"


def _read(cache_file: Path) -> dict[str, str | None]:
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(code): verdict for code, verdict in data.items() if verdict is None or isinstance(verdict, str)
    }


def _write(cache_file: Path, verdicts: dict[str, str | None]) -> None:
    """Write atomically (a temporary file renamed over), so a parallel parse never reads half a file."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(verdicts, sort_keys=True, indent=0), encoding="utf-8")
        partial.replace(cache_file)
    except OSError:
        pass  # read-only home or full disk: the package is asked again next time
