"""Area and power: MAESTRO's 28 nm formulas (semantics doc 4.11) and user overrides."""

from __future__ import annotations

import json

import pytest

from costmodel import DEFAULT_TECH, SpecError, Tech
from tests.costmodel_tests.fidelity import public_rows


@pytest.fixture(scope="module")
def oracle_ok():
    rows = public_rows()
    return rows[rows.status == "ok"]


def test_area_and_power_match_maestro_to_six_digits(oracle_ok):
    """MAESTRO feeds its formulas the CSV L1/L2 requirements and the given NoC bandwidth."""
    for row in oracle_ok.itertuples():
        args = (row.num_pes, row.num_simd_lanes, row.noc_bw_cstr, row.l1_size_req, row.l2_size_req)
        assert DEFAULT_TECH.area_um2(*args) == pytest.approx(row.area_um2, rel=1e-5)
        assert DEFAULT_TECH.power_mw(*args) == pytest.approx(row.power_mW, rel=1e-5)
        parts = DEFAULT_TECH.power_breakdown_mw(*args)
        assert parts["pe"] == pytest.approx(row.pe_power_mW, rel=1e-5)
        assert parts["l1"] == pytest.approx(row.l1_power_mW, rel=1e-5)
        assert parts["l2"] == pytest.approx(row.l2_power_mW, rel=1e-5)
        assert parts["noc"] == pytest.approx(row.noc_power_mW, rel=1e-5)


def test_overrides_from_json_and_toml(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps({"mac_area_um2": 500, "l2_energy_mac": 20}))
    (tmp_path / "t.toml").write_text("mac_area_um2 = 500\nl2_energy_mac = 20\n")
    for name in ("t.json", "t.toml"):
        tech = Tech.from_file(tmp_path / name)
        assert tech.mac_area_um2 == 500 and tech.l2_energy_mac == 20
        assert tech.l1_energy_mac == DEFAULT_TECH.l1_energy_mac
        assert tech.area_um2(1, 1, 1, 1, 1) > DEFAULT_TECH.area_um2(1, 1, 1, 1, 1)


@pytest.mark.parametrize("content, message", [
    ('{"mac_aera_um2": 1}', "unknown key"),
    ('{"mac_area_um2": "big"}', "must be a finite number"),
    ("{not json", "not valid JSON"),
    ('{"mac_area_um2": NaN}', "finite number, got nan"),
    ('{"mac_area_um2": -Infinity}', "finite number, got -inf"),
    ('{"mac_area_um2": 1' + "0" * 400 + "}", "finite number"),
    ('{"mac_area_um2": 1' + "0" * 5000 + "}", "not valid JSON"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ("\x00\x01", "binary data"),
])
def test_bad_tech_files_name_the_key(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SpecError, match=message):
        Tech.from_file(path)


def test_a_device_is_not_a_tech_file():
    with pytest.raises(SpecError, match="is a device"):
        Tech.from_file("/dev/zero")
