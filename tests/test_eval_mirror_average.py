"""The table of benchmarks/eval_mirror_average.py."""

import importlib.util
import pathlib

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "eval_mirror_average.py"


def _script():
    spec = importlib.util.spec_from_file_location("eval_mirror_average", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_shows_both_settings_and_their_difference():
    script = _script()
    off = {key: 0.5 for key in script.KEYS} | {"n_faces": 7}
    on = {key: 0.5 for key in script.KEYS} | {"r_melanin": 0.625, "psnr": 0.25, "n_faces": 7}
    text = script.table("faces.h5", {"off": off, "on": on})
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert "(7 faces)" in text
    difference = rows[-1].split(" | ")
    assert difference[0] == "| on − off"
    assert difference[1 + script.KEYS.index("r_melanin")] == "+0.1250"
    assert difference[1 + script.KEYS.index("psnr")] == "-0.2500"
    assert difference[1 + script.KEYS.index("r_shading")] == "+0.0000"
