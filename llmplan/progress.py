"""Progress logs of training runs in progress: one folder per run under
data/runs_in_progress/<run-name>/ with a `run.toml` (what was planned) and a log a training
script appends to. Read here into one frame per run — time (UTC), step, tokens, loss — for
llmplan.tracking to forecast from.

Formats: JSON Lines or CSV with `time, step, tokens[, loss]` (time: ISO 8601, or Unix seconds;
a time without a zone is UTC), and TensorBoard event files (read with the `tensorboard`
package's own loader; tags named in run.toml). Bad lines are counted and named, never fatal;
a log whose time goes backwards or whose tokens decrease is an error for that run only.
"""

import tomllib
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmplan.errors import InputError, LlmplanError, Problem
from llmplan.units import parse_size

RUN_FILE = "run.toml"
LOG_SUFFIXES = (".jsonl", ".ndjson", ".csv")
TB_PREFIX = "events.out.tfevents"
COLUMNS = ("time", "step", "tokens", "loss")
MAX_BAD_NAMED = 10                    # bad lines named in the summary (all are counted)


class TensorBoardTags(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens_tag: str | None = Field(default=None, description="Scalar tag holding tokens seen (e.g. 'train/tokens')")
    loss_tag: str | None = Field(default=None, description="Scalar tag holding the training loss (e.g. 'train/loss')")
    tokens_per_step: float | None = Field(default=None, gt=0, description="Tokens per step, when no tag holds tokens")


class RunSpec(BaseModel):
    """run.toml: what the run was planned to be."""
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    params: str = Field(description="Total parameters, e.g. 7B")
    active_params: str | None = Field(default=None, description="Mixture of experts: active parameters, e.g. 37B")
    tokens: str = Field(description="Planned training tokens, e.g. 2T")
    accelerator: str = Field(description="Accelerator (name or alias from data/accelerators)")
    gpus: int = Field(ge=1, description="Accelerators in the run")
    start: datetime | None = Field(default=None, description="When the run started (default: the log's first time)")
    deadline: datetime | None = Field(default=None, description="When it must finish")
    usd_per_gpu_hour: float | None = Field(default=None, ge=0, description="Price (default: the accelerator table's)")
    precision: str = Field(default="bf16", pattern="^(bf16|fp8)$")
    seq_len: int = Field(default=4096, ge=128)
    stall_hours_prior: float | None = Field(default=None, gt=0, le=240, description="Prior length of a stall in hours, until "
                                                 "the run has its own (default: restart + half the checkpoint interval, "
                                                 "llmplan.goodput)")
    storage_gbps: float = Field(default=1.0, gt=0, le=1e6, description="Checkpoint write bandwidth per 8-accelerator node, "
                                                                       "GB/s (llmplan.goodput)")
    restart_minutes: float = Field(default=11.0, gt=0, le=10_000, description="Minutes to restart after an interruption "
                                                                             "(llmplan.goodput)")
    log: str | None = Field(default=None, description="The log file or TensorBoard folder, relative to the run folder")
    tensorboard: TensorBoardTags = TensorBoardTags()
    notes: str = ""

    @field_validator("params", "tokens", "active_params")
    @classmethod
    def _size(cls, v):
        if v is not None:
            try:
                parse_size(v)
            except LlmplanError as e:                # a field error, reported with the others
                raise ValueError(str(e)) from None
        return v

    @field_validator("start", "deadline")
    @classmethod
    def _utc(cls, v):
        return v if v is None or v.tzinfo else v.replace(tzinfo=timezone.utc)

    @model_validator(mode="after")
    def _deadline_after_start(self):
        if self.start is not None and self.deadline is not None and self.deadline <= self.start:
            raise ValueError(f"deadline {self.deadline:%Y-%m-%dT%H:%M:%SZ} is not after start {self.start:%Y-%m-%dT%H:%M:%SZ}; "
                             "expected a deadline after the run's start")
        return self

    def n_params(self) -> float:
        return parse_size(self.params)

    def n_active(self) -> float:
        return parse_size(self.active_params) if self.active_params else self.n_params()

    def n_tokens(self) -> float:
        return parse_size(self.tokens)


def load_spec(path: Path, name: str | None = None) -> RunSpec:
    """run.toml → RunSpec; errors name the file and the field."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError([Problem(str(path), None, None, f"cannot read: {e}")], consequence=None) from e
    except tomllib.TOMLDecodeError as e:
        raise InputError([Problem(str(path), getattr(e, "lineno", None), None, f"not TOML: {e}")], consequence=None) from e
    raw.setdefault("name", name or path.parent.name)
    try:
        return RunSpec(**raw)
    except ValidationError as e:
        text = path.read_text(encoding="utf-8").splitlines()

        def where(err) -> tuple[int | None, str]:
            key = str(err["loc"][0]) if err["loc"] else ("deadline" if "deadline" in err["msg"] else "")
            line = next((i + 1 for i, t in enumerate(text) if t.strip().startswith((f"{key} ", f"{key}="))), None) if key else None
            return line, (".".join(str(x) for x in err["loc"]) or key) or None

        probs = [Problem(str(path), *where(err), err["msg"].removeprefix("Value error, ")) for err in e.errors()]
        raise InputError(probs, consequence=None) from e
    except LlmplanError as e:
        raise InputError([Problem(str(path), None, None, str(e))], consequence=None) from e


def find_log(run_dir: Path, spec: RunSpec | None = None) -> Path:
    """The run's log: run.toml's `log`, else the one JSONL/CSV file or TensorBoard folder there."""
    run_dir = Path(run_dir)
    if spec is not None and spec.log:
        p = run_dir / spec.log
        if not p.exists():
            raise InputError([Problem(str(run_dir / RUN_FILE), None, "log", f"{spec.log!r} does not exist in {run_dir}")],
                             consequence=None)
        return p
    logs = sorted(p for p in run_dir.iterdir() if p.suffix in LOG_SUFFIXES)
    if any(p.name.startswith(TB_PREFIX) for p in run_dir.rglob(f"{TB_PREFIX}*")):
        logs.append(run_dir)
    if len(logs) != 1:
        found = ", ".join(p.name for p in logs) or "none"
        raise InputError([Problem(str(run_dir), None, None, f"expected one progress log (*.jsonl, *.csv or TensorBoard "
                                                            f"event files), found {found}; name it with log = … in {RUN_FILE}")],
                         consequence=None)
    return logs[0]


def _times(col: pl.Expr) -> pl.Expr:
    """ISO 8601 (with a zone, or naive = UTC) or Unix seconds → Datetime(UTC)."""
    s = col.cast(pl.Utf8).str.strip_chars()
    unix = s.cast(pl.Float64, strict=False)
    return pl.coalesce(
        pl.when(unix.is_not_null()).then((unix * 1e6).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))),
        s.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_zone="UTC"),   # Z or ±hh:mm
        s.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False).dt.replace_time_zone("UTC"),
        s.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False).dt.replace_time_zone("UTC"),
    )


def _typed(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """String columns time/step/tokens/loss (+ line) → typed rows and the bad lines with a reason."""
    t = raw.with_columns(
        _times(pl.col("time")).alias("_time"),
        pl.col("step").cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False).alias("_step"),
        pl.col("tokens").cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False).alias("_tokens"),
        pl.col("loss").cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False).alias("_loss"),
    )
    has_loss = pl.col("loss").is_not_null() & (pl.col("loss").cast(pl.Utf8).str.strip_chars() != "")
    reason = (pl.when(pl.col("_bad").is_not_null()).then(pl.col("_bad"))
              .when(pl.col("_time").is_null()).then(pl.format("time {} is not ISO 8601 or Unix seconds", pl.col("time").fill_null("(missing)")))
              .when(pl.col("_step").is_null()).then(pl.format("step {} is not a number", pl.col("step").fill_null("(missing)")))
              .when(pl.col("_tokens").is_null()).then(pl.format("tokens {} is not a number", pl.col("tokens").fill_null("(missing)")))
              .when(pl.col("_tokens") < 0).then(pl.lit("tokens is negative"))
              .when(has_loss & (pl.col("_loss").is_null() | ~pl.col("_loss").is_finite()))
              .then(pl.format("loss {} is not a finite number", pl.col("loss")))
              .otherwise(None))
    t = t.with_columns(reason.alias("reason"))
    bad = t.filter(pl.col("reason").is_not_null()).select("line", "reason")
    good = t.filter(pl.col("reason").is_null()).select(
        "line", pl.col("_time").alias("time"), pl.col("_step").cast(pl.Int64).alias("step"), pl.col("_tokens").alias("tokens"),
        pl.col("_loss").alias("loss"))
    return good, bad


def _read_jsonl(path: Path) -> pl.DataFrame:
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = pl.DataFrame({"raw": text.split("\n")}).with_row_index("line", offset=1).with_columns(pl.col("line").cast(pl.Int64))
    lines = lines.filter(pl.col("raw").str.strip_chars() != "")
    is_obj = pl.col("raw").str.strip_chars().str.starts_with("{") & pl.col("raw").str.strip_chars().str.ends_with("}")
    cols = [pl.col("raw").str.json_path_match(f"$.{k}").alias(k) for k in COLUMNS]
    return lines.with_columns(*cols).with_columns(
        pl.when(~is_obj | pl.all_horizontal(*(pl.col(k).is_null() for k in COLUMNS)))
        .then(pl.lit("not a JSON object with time, step, tokens")).otherwise(None).alias("_bad"))


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        df = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True)
    except pl.exceptions.NoDataError:
        df = pl.DataFrame()
    missing = [c for c in ("time", "step", "tokens") if c not in df.columns]
    if missing:
        raise InputError([Problem(str(path), 1, ", ".join(missing), f"header must name time, step, tokens[, loss]; "
                                                                    f"found {', '.join(df.columns) or 'nothing'}")],
                         consequence=None)
    if "loss" not in df.columns:
        df = df.with_columns(pl.lit(None, pl.Utf8).alias("loss"))
    return df.select(*COLUMNS).with_row_index("line", offset=2).with_columns(
        pl.col("line").cast(pl.Int64), pl.lit(None, pl.Utf8).alias("_bad"))


def _read_tensorboard(path: Path, tags: TensorBoardTags) -> pl.DataFrame:
    """Scalars from TensorBoard event files via tensorboard's loader (legacy simple_value and
    tensor scalars alike, through tensorboard.data_compat)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.data_compat import migrate_value
    from tensorboard.util import tensor_util

    files = sorted(Path(path).rglob(f"{TB_PREFIX}*")) if Path(path).is_dir() else [Path(path)]
    rows: dict[tuple[int, str], dict] = {}
    tags_seen: set[str] = set()
    for f in files:
        for ev in EventFileLoader(str(f)).Load():
            if not ev.HasField("summary"):
                continue
            for v in ev.summary.value:
                v = migrate_value(v)
                tags_seen.add(v.tag)
                if v.tag not in (tags.tokens_tag, tags.loss_tag):
                    continue
                x = float(tensor_util.make_ndarray(v.tensor).item())
                r = rows.setdefault((ev.step, str(f)), {"time": ev.wall_time, "step": ev.step})
                r["time"] = max(r["time"], ev.wall_time)
                r["tokens" if v.tag == tags.tokens_tag else "loss"] = x
    if tags.tokens_tag is None and tags.tokens_per_step is None:
        raise InputError([Problem(str(path), None, "tensorboard.tokens_tag", "name the scalar tag holding tokens (or set "
                                                                            f"tokens_per_step); tags in the log: {sorted(tags_seen)}")],
                         consequence=None)
    if tags.tokens_tag is not None and tags.tokens_tag not in tags_seen:
        raise InputError([Problem(str(path), None, "tensorboard.tokens_tag", f"no scalar {tags.tokens_tag!r} in the log; "
                                                                            f"tags: {sorted(tags_seen)}")], consequence=None)
    out = []
    for (step, _), r in sorted(rows.items(), key=lambda kv: (kv[1]["time"], kv[0][0])):   # events, not plan rows
        tokens = r.get("tokens", step * tags.tokens_per_step if tags.tokens_per_step else None)
        if tokens is None:
            continue
        out.append({"time": str(r["time"]), "step": str(step), "tokens": str(tokens),
                    "loss": None if r.get("loss") is None else str(r["loss"])})
    df = pl.DataFrame(out, schema={c: pl.Utf8 for c in COLUMNS})
    return df.with_row_index("line", offset=1).with_columns(pl.col("line").cast(pl.Int64), pl.lit(None, pl.Utf8).alias("_bad"))


def read_log(path: Path, spec: RunSpec | None = None) -> tuple[pl.DataFrame, dict]:
    """A progress log → (rows sorted as written: line, time, step, tokens, loss; summary with
    `bad_lines` count and the first few named). Raises InputError naming the file and line if
    time goes backwards or tokens decrease (the run cannot be tracked from such a log)."""
    path = Path(path)
    if path.is_dir() or path.name.startswith(TB_PREFIX):
        raw = _read_tensorboard(path, (spec.tensorboard if spec else TensorBoardTags()))
        kind = "tensorboard"
    elif path.suffix == ".csv":
        raw, kind = _read_csv(path), "csv"
    else:
        raw, kind = _read_jsonl(path), "jsonl"
    if raw.height == 0:
        raise InputError([Problem(str(path), 2 if kind == "csv" else 1, None, "no rows after the header: expected at least one "
                                  "line with time, step, tokens" if kind == "csv" else "no rows: expected at least one line "
                                  "with time, step, tokens")], consequence=None)
    good, bad = _typed(raw)
    # Progress only moves forward: time and tokens never decrease from one good line to the next.
    chk = good.with_columns(pl.col("time").shift(1).alias("_pt"), pl.col("tokens").shift(1).alias("_pk"),
                            pl.col("line").shift(1).alias("_pl"))
    back = chk.filter((pl.col("time") < pl.col("_pt")) | (pl.col("tokens") < pl.col("_pk")))
    if back.height:
        r = back.row(0, named=True)
        what = ("time", f"time {r['time']:%Y-%m-%dT%H:%M:%SZ} is before line {r['_pl']}'s {r['_pt']:%Y-%m-%dT%H:%M:%SZ}") \
            if r["time"] < r["_pt"] else ("tokens", f"tokens {r['tokens']:,.0f} are fewer than line {r['_pl']}'s {r['_pk']:,.0f}")
        raise InputError([Problem(str(path), int(r["line"]), what[0], what[1] + " (a progress log only moves forward; "
                                                                      "after a restart from a checkpoint, log the tokens the run "
                                                                      "has kept, or start a new log)")], consequence=None)
    named = [f"line {r['line']}: {r['reason']}" for r in bad.head(MAX_BAD_NAMED).iter_rows(named=True)]
    return good, {"kind": kind, "lines": raw.height, "good_lines": good.height, "bad_lines": bad.height, "bad": named}


def runs_in_progress(data_dir: Path) -> list[Path]:
    """Run folders under data/runs_in_progress (those with a run.toml)."""
    root = Path(data_dir) / "runs_in_progress"
    return sorted(p.parent for p in root.glob(f"*/{RUN_FILE}")) if root.exists() else []


def input_files(data_dir: Path) -> list[Path]:
    """Every file under data/runs_in_progress, for the run's input hashes."""
    root = Path(data_dir) / "runs_in_progress"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
