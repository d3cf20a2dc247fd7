"""Progress logs in every format a training script writes: JSON Lines, CSV, TensorBoard (written
here with tensorboardX, read with tensorboard's loader); bad lines counted and named; a log that
goes backwards is an error naming its file, line and column."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from llmplan.errors import InputError
from llmplan.progress import RunSpec, find_log, load_spec, read_log

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _rows(n=50, every=600, rate=1e6):
    return [{"time": (T0 + timedelta(seconds=every * (i + 1))).strftime("%Y-%m-%dT%H:%M:%SZ"), "step": i + 1,
             "tokens": int(rate * every * (i + 1)), "loss": round(3.0 - 0.01 * i, 3)} for i in range(n)]


def test_jsonl_reads_and_names_bad_lines(tmp_path):
    rows = _rows()
    lines = [json.dumps(r) for r in rows]
    lines[4] = "{not json"                                        # line 5
    lines[9] = json.dumps({**rows[9], "tokens": "many"})          # line 10
    lines[14] = json.dumps({**rows[14], "time": "yesterday"})     # line 15
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    log, info = read_log(f)
    assert info["kind"] == "jsonl" and info["bad_lines"] == 3 and log.height == 47
    assert info["bad"][0].startswith("line 5: not a JSON object")
    assert info["bad"][1] == "line 10: tokens many is not a number"
    assert info["bad"][2] == "line 15: time yesterday is not ISO 8601 or Unix seconds"
    assert log["tokens"][-1] == rows[-1]["tokens"] and log["time"][0] == T0 + timedelta(seconds=600)


def test_csv_with_unix_times_and_zones(tmp_path):
    f = tmp_path / "p.csv"
    unix = int((T0 + timedelta(hours=1)).timestamp())
    f.write_text("time,step,tokens,loss\n"
                 "2026-11-01T00:30:00+09:00,1,100,\n"           # 2026-10-31 15:30 UTC
                 f"{unix},2,200,2.5\n"
                 "2026-11-01 02:00:00,3,300,2.4\n"              # no zone: UTC
                 "2026-11-01T03:00:00Z,4,,2.3\n", encoding="utf-8")
    log, info = read_log(f)
    assert [t.isoformat() for t in log["time"]] == ["2026-10-31T15:30:00+00:00", "2026-11-01T01:00:00+00:00",
                                                    "2026-11-01T02:00:00+00:00"]
    assert info["bad"] == ["line 5: tokens (missing) is not a number"]
    assert log["loss"].to_list() == [None, 2.5, 2.4]


def test_csv_without_the_columns_names_them(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("when,iteration,seen\n1,2,3\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_log(f)
    assert f"{f}, line 1, column 'time, step, tokens'" in str(e.value)


@pytest.mark.parametrize("what,change,column", [
    ("time", lambda r: {**r, "time": "2026-11-01T00:05:00Z"}, "time"),
    ("tokens", lambda r: {**r, "tokens": 5}, "tokens"),
])
def test_a_log_that_goes_backwards_is_an_error_naming_line_and_column(tmp_path, what, change, column):
    rows = _rows(20)
    rows[11] = change(rows[11])                                   # line 12
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_log(f)
    assert f"{f}, line 12, column '{column}'" in str(e.value) and "line 11" in str(e.value)


def test_tensorboard_events_written_by_a_training_script(tmp_path):
    from tensorboardX import SummaryWriter

    run = tmp_path / "run"
    w = SummaryWriter(str(run / "tb"))
    for i in range(1, 101):
        wall = (T0 + timedelta(seconds=60 * i)).timestamp()
        w.add_scalar("train/consumed_tokens", 4_194_304 * i, i, walltime=wall)
        w.add_scalar("train/loss", 3.0 - 0.005 * i, i, walltime=wall)
    w.close()
    (run / "run.toml").write_text('params = "1B"\ntokens = "20B"\naccelerator = "H100"\ngpus = 8\n'
                                  '[tensorboard]\ntokens_tag = "train/consumed_tokens"\nloss_tag = "train/loss"\n')
    spec = load_spec(run / "run.toml")
    path = find_log(run, spec)
    log, info = read_log(path, spec)
    assert info["kind"] == "tensorboard" and log.height == 100 and info["bad_lines"] == 0
    assert log["tokens"][-1] == pytest.approx(4_194_304 * 100, rel=1e-6)       # float32 in the event file
    assert log["loss"][0] == pytest.approx(2.995, abs=1e-6)
    assert log["time"][-1] == T0 + timedelta(seconds=6000)
    # a missing tag says which tags the log has
    bad = RunSpec(**{**spec.model_dump(), "tensorboard": {"tokens_tag": "tokens"}})
    with pytest.raises(InputError) as e:
        read_log(path, bad)
    assert "train/consumed_tokens" in str(e.value) and "tensorboard.tokens_tag" in str(e.value)
    # no tokens tag: tokens = step × tokens_per_step
    per_step = RunSpec(**{**spec.model_dump(), "tensorboard": {"loss_tag": "train/loss", "tokens_per_step": 1000}})
    log2, _ = read_log(path, per_step)
    assert log2["tokens"].to_list()[:3] == [1000.0, 2000.0, 3000.0]


def test_run_toml_errors_name_file_and_field(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('params = "7B"\ntokens = "lots"\naccelerator = "H100"\ngpus = 0\n')
    with pytest.raises(InputError) as e:
        load_spec(f)
    msg = str(e.value)
    assert f"{f}, line 4, column 'gpus'" in msg and f"{f}, line 2, column 'tokens'" in msg
