"""Where things live. One place so every command agrees on paths and the env overrides."""

import hashlib
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"

WAREHOUSE_ENV = "LLMPLAN_WAREHOUSE"
DATA_ENV = "LLMPLAN_DATA"
REPORTS_ENV = "LLMPLAN_REPORTS"


def data_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override or os.environ.get(DATA_ENV) or PROJECT_ROOT / "data").resolve()


def warehouse_path(override: str | os.PathLike | None = None) -> Path:
    """`--warehouse` beats $LLMPLAN_WAREHOUSE beats data/warehouse.duckdb."""
    return Path(override or os.environ.get(WAREHOUSE_ENV) or PROJECT_ROOT / "data" / "warehouse.duckdb").resolve()


def reports_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override or os.environ.get(REPORTS_ENV) or PROJECT_ROOT / "reports").resolve()


CACHE_ENV = "LLMPLAN_CACHE"


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Files derived only from pinned library versions or from their own content (the Vega
    bundle, rendered PNGs): safe to delete, rebuilt when missing."""
    return Path(override or os.environ.get(CACHE_ENV) or PROJECT_ROOT / ".cache").resolve()


def cached(name: str, make) -> bytes:
    """The bytes of cache_dir()/name, made once by make() (written atomically: two processes
    making the same file at once both end with a whole one)."""
    f = cache_dir() / name
    try:
        return f.read_bytes()
    except OSError:
        pass
    data = make()
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f"{f.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(f)
    except OSError:                                 # a read-only checkout still works, uncached
        pass
    return data


PREFECT_HOME_ENV = "LLMPLAN_PREFECT_HOME"
SERVER_FILE = "llmplan-server.json"    # written by `llmplan serve` while it serves: the API URL to use


def prefect_home(override: str | os.PathLike | None = None) -> Path:
    """Where `llmplan serve` keeps its Prefect server (database, log, SERVER_FILE)."""
    return Path(override or os.environ.get(PREFECT_HOME_ENV) or PROJECT_ROOT / ".prefect").resolve()


def code_version() -> str:
    """Hash of the domain code, flows and SQL: a fit made by other code is not reused."""
    h = hashlib.sha256()
    for folder, pattern in ((PROJECT_ROOT / "llmplan", "*.py"), (PROJECT_ROOT / "flows", "*.py"), (SQL_DIR, "*.sql")):
        for p in sorted(folder.glob(pattern)):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    from llmplan import __version__

    return f"{__version__}+{h.hexdigest()[:12]}"
