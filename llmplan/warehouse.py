"""The DuckDB warehouse file: schema from sql/, atomic all-or-nothing writes, read-only reads.

Why copy-and-rename: DuckDB allows one writer and a read-only reader blocks it. A pipeline run
copies the current file to `<name>.tmp-<pid>`, writes everything there, checkpoints, closes and
`os.replace()`s it onto the real path. Readers holding the old file keep a consistent old
snapshot, new connections see the whole new run, a failed or killed run leaves the old file
byte-for-byte as it was (the temporary copy is discarded). Writers are serialised by an
advisory lock file beside the warehouse (retried with backoff).
"""

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from llmplan.config import SQL_DIR
from llmplan.errors import LlmplanError


def sql_files() -> list[Path]:
    """Applied in file-name order; views.sql sorts after the numbered files."""
    return sorted(SQL_DIR.glob("*.sql"))


def apply_schema(con: duckdb.DuckDBPyConnection) -> None:
    for f in sql_files():
        con.execute(f.read_text())


@contextlib.contextmanager
def writer_lock(path: Path, timeout_s: float = 600.0) -> Iterator[None]:
    """One pipeline writer at a time per warehouse (advisory flock, retried with backoff)."""
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        delay, waited = 0.2, 0.0
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if waited >= timeout_s:
                    raise LlmplanError(f"another pipeline run holds {lock_path} (waited {waited:.0f} s)")
                time.sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Staging:
    """A writable copy of the warehouse that replaces the real file only on commit()."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")

    def begin(self) -> "Staging":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cleanup()
        self._remove_orphans()
        if self.path.exists():
            shutil.copyfile(self.path, self.tmp)
            wal = self.path.with_name(self.path.name + ".wal")
            if wal.exists():  # an interrupted external writer: keep its committed tail
                shutil.copyfile(wal, self.tmp.with_name(self.tmp.name + ".wal"))
        with self.connect() as con:
            apply_schema(con)
        return self

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.tmp))

    def commit(self) -> None:
        with self.connect() as con:
            con.execute("CHECKPOINT")
        os.replace(self.tmp, self.path)
        self._cleanup()

    def abort(self) -> None:
        self._cleanup()

    def _remove_orphans(self) -> None:
        """Copies left by a writer that was killed (its pid is gone). Safe: we hold the writer lock."""
        for p in self.path.parent.glob(f"{self.path.name}.tmp-*"):
            pid = p.name.rsplit("tmp-", 1)[1].split(".", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                p.unlink(missing_ok=True)

    def _cleanup(self) -> None:
        for p in (self.tmp, self.tmp.with_name(self.tmp.name + ".wal")):
            p.unlink(missing_ok=True)


@contextlib.contextmanager
def transaction_file(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """One connection on a staging copy; committed on success, discarded on error."""
    st = Staging(path).begin()
    con = st.connect()
    try:
        yield con
    except BaseException:
        con.close()
        st.abort()
        raise
    con.close()
    st.commit()


def ensure(path: Path) -> None:
    """Create (or migrate) the warehouse file so readers find every table and view."""
    with writer_lock(path), transaction_file(path):
        pass


def connect_readonly(path: Path, retries: int = 20) -> duckdb.DuckDBPyConnection:
    """Read-only connection, retried while a writer briefly holds the file."""
    path = Path(path)
    if not path.exists():
        raise LlmplanError(f"no warehouse at {path}; create one with `llmplan run` (or pass --warehouse)")
    delay = 0.05
    for attempt in range(retries):
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or attempt == retries - 1:
                raise LlmplanError(f"cannot open {path} read-only: {e}") from e
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def replace_table(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame | None) -> None:
    """Replace a table's rows with a frame's, matching columns by name (shape from sql/)."""
    con.execute(f"DELETE FROM {table}")
    if frame is not None and frame.height:
        append(con, table, frame)


def append(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    present = [c for c in cols if c in frame.columns]
    _df = frame.select(present)  # noqa: F841 (queried by name below)
    names = ", ".join(f'"{c}"' for c in present)
    con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _df")


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """A query as a Polars frame; values go in `params` (bound, never interpolated)."""
    return con.sql(sql, params=params).pl() if params else con.sql(sql).pl()
