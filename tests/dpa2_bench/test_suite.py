"""``dpa2 bench``: one small case side by side with deepmd-kit's numpy model, written as
JSON and Markdown. Nothing here is timed against a bound (speed is measured in
benchmarks/, not asserted in tests); what is asserted is that both contenders ran on the
same inputs and agree."""

from __future__ import annotations

import json

import pytest

from dpa2_cli.main import main


def test_bench_writes_json_and_markdown_with_both_contenders(tmp_path, capsys):
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    assert main(["bench", "--sizes", "192", "--backends", "numpy", "--configs", "small",
                 "--dtype", "float64", "--repeat", "2", "--no-flops", "--json", str(out),
                 "--md", str(md)]) == 0
    result = json.loads(out.read_text())
    assert result["machine"]["matmul_gflops"]["float64"] > 0
    (row,) = result["rows"]
    assert (row["config"], row["dtype"], row["natoms"], row["backend"], row["task"]) == \
        ("small", "float64", 192, "numpy", "forward")
    assert row["ours_s"] > 0 and row["deepmd_s"] > 0 and len(row["ours_all_s"]) == 2
    assert row["ratio"] == row["ours_s"] / row["deepmd_s"]
    assert row["max_rel_diff"] <= 1e-10  # the same descriptor as deepmd-kit's dpmodel
    text = md.read_text()
    assert "small" in text and "numpy" in text


def test_bench_refuses_unknown_choices(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--backends", "tensorflow"])
    assert exit_.value.code == 2
    assert "tensorflow" in capsys.readouterr().err
