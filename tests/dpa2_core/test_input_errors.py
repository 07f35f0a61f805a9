"""Errors in a training input name the key path (``training.training_data.systems[2]``) and,
for JSON syntax errors, the line and column."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_input
from oracle import WATER

from dpa2_core.training.settings import TrainInput


def _with(tmp_path, edit) -> dict:
    d = json.loads(tiny_input(tmp_path).read_text())
    edit(d)
    return d


def test_json_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "input.json"
    path.write_text('{\n  "model": {\n    "type_map": ["O", "H"]\n    "descriptor": {}\n}\n')
    with pytest.raises(ValueError, match=rf"input='{path}': invalid JSON at line 4, column 5: "
                                         "Expecting ',' delimiter"):
        TrainInput.from_file(path)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda d: d["training"]["training_data"].update(
        systems=[str(WATER / "data_0"), str(WATER / "data_1"), "no/such/system"]),
     r"training.training_data.systems\[2\]='no/such/system': no such directory"),
    (lambda d: d["training"]["validation_data"].update(systems=[str(WATER / "data_0"), 7]),
     r"training.validation_data.systems\[1\]=7: must be a path"),
    (lambda d: d["training"]["training_data"].update(systems=[str(WATER / "data_0" / "set.000")]),
     r"training.training_data.systems\[0\]=.*: not a deepmd-format system"),
    (lambda d: d["training"]["training_data"].update(batch_size="big"),
     r"training.training_data.batch_size='big': use an int"),
    (lambda d: d["training"]["validation_data"].update(numb_btch=0),
     r"training.validation_data.numb_btch=0: must be positive"),
    (lambda d: d["training"].update(numb_steps="ten"),
     r"training.numb_steps='ten': must be an int"),
    (lambda d: d["training"].update(max_ckpt_keep=2.5),
     r"training.max_ckpt_keep=2.5: must be an int"),
    (lambda d: d["training"].update(nan_policy="ignore"),
     r"training.nan_policy='ignore': use one of \('stop', 'skip'\)"),
    (lambda d: d["learning_rate"].update(start_lr="fast"),
     r"learning_rate.start_lr='fast': must be a number"),
    (lambda d: d["loss"].update(start_pref_f=None), r"loss.start_pref_f=None: must be a number"),
])
def test_bad_values_name_their_key_path(tmp_path, edit, match):
    with pytest.raises(ValueError, match=match):
        TrainInput.from_dict(_with(tmp_path, edit))


def test_nan_policy_is_read(tmp_path):
    assert TrainInput.from_dict(_with(tmp_path, lambda d: None)).nan_policy == "stop"
    d = _with(tmp_path, lambda d: d["training"].update(nan_policy="skip"))
    assert TrainInput.from_dict(d).nan_policy == "skip"
