import polars as pl
import pytest

from llmplan.accelerators import alias_key, resolve
from llmplan.errors import LlmplanError
from llmplan.ingest import read_all
from llmplan.transform import aliases
from tests.conftest import DATA


@pytest.fixture(scope="module")
def table():
    d = read_all(DATA)
    return aliases(d["accelerators"].typed, d["accelerator_aliases"].typed)


@pytest.mark.parametrize("name, expected", [
    ("H100-80GB", "H100-80GB"), ("h100", "H100-80GB"), ("H100 80GB", "H100-80GB"), ("NVIDIA H100 SXM5 80GB", "H100-80GB"),
    ("NVIDIA A100 SXM4 80 GB", "A100-80GB"), ("a100_40gb", "A100-40GB"), ("A800", "A100-80GB"), ("H800", "H800"),
    ("Google TPU v4", "TPUv4"), ("mi300x", "MI300X"), ("B200", "B200"),
])
def test_aliases_resolve(table, name, expected):
    assert resolve(name, table) == expected


def test_unknown_accelerator_lists_the_known_names(table):
    with pytest.raises(LlmplanError) as e:
        resolve("Z9000", table)
    assert "Z9000" in str(e.value) and "H100-80GB" in str(e.value) and "MI300X" in str(e.value)


def test_export_variants_keep_their_flag(table):
    assert table.filter(pl.col("alias_key") == alias_key("H800"))["flag"].to_list() == ["export_variant"]


def test_known_system_without_specs_is_not_resolvable_for_planning(table):
    with pytest.raises(LlmplanError, match="no specs"):
        resolve("Cerebras CS-2", table)
