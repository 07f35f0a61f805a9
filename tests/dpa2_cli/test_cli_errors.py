"""Every error of the command line is one line naming the file, exit status 2.

Each bad input of issue 11 is run through the command (in-process, so a traceback would
fail the test as an exception), and the help texts are checked for defaults and markup.
"""

from __future__ import annotations

import argparse

import pytest
from cli_inputs import make_files

from dpa2_cli.main import build_parser, main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("inputs"))


# (argv with {names} of files, text the one error line must contain)
CASES = {
    "describe-empty-xyz": (["describe", "{empty_xyz}", "--model", "{dp}", "-o", "{out}.npz"],
                           "{empty_xyz}: empty file"),
    "eval-empty-xyz": (["eval", "{empty_xyz}", "--model", "{dp}"], "{empty_xyz}: empty file"),
    "describe-corrupt-dp": (["describe", "--model", "{corrupt_dp}", "-o", "{out}.npz"],
                            "{corrupt_dp}: a damaged HDF5 file"),
    "eval-corrupt-dp": (["eval", "{molecule}", "--model", "{corrupt_dp}"],
                        "{corrupt_dp}: a damaged HDF5 file"),
    "test-corrupt-dp": (["test", "--model", "{corrupt_dp}", "--system", "{system}"],
                        "{corrupt_dp}: a damaged HDF5 file"),
    "eval-text-as-dp": (["eval", "{molecule}", "--model", "{text_dp}"],
                        "{text_dp}: not a model file"),
    "eval-corrupt-xyz": (["eval", "{corrupt_xyz}", "--model", "{dp}"],
                         "{corrupt_xyz}, line 4: cannot read it as a structure"),
    "describe-corrupt-xyz": (["describe", "{corrupt_xyz}", "-o", "{out}.npz"],
                             "{corrupt_xyz}, line 4: cannot read it"),
    "eval-corrupt-poscar": (["eval", "{corrupt_poscar}", "--model", "{dp}"],
                            "{corrupt_poscar}: cannot read it as a structure"),
    "describe-missing-structure": (["describe", "{missing}", "-o", "{out}.npz"],
                                   "{missing}: no such file or directory"),
    "eval-missing-structure": (["eval", "{missing}", "--model", "{dp}"],
                               "{missing}: no such file or directory"),
    "test-missing-system": (["test", "--model", "{dp}", "--system", "{missing}"],
                            "{missing}: no such file or directory"),
    "eval-missing-model": (["eval", "{molecule}", "--model", "{missing}"],
                           "{missing}: no such file"),
    "train-missing-input": (["train", "{missing}"], "{missing}"),
    "eval-input-as-model": (["eval", "{molecule}", "--model", "{input}"],
                            "{input}: a deepmd-kit training input"),
    "describe-input-as-model": (["describe", "--model", "{input}", "-o", "{out}.npz"],
                                "{input}: a deepmd-kit training input"),
    "eval-descriptor-only": (["eval", "{molecule}", "--model", "{own_npz}"],
                             "{own_npz}: a dpa2 descriptor file"),
    "test-describe-output": (["test", "--model", "{describe_npz}", "--system", "{system}"],
                             "{describe_npz}: the output of `dpa2 describe`"),
    "eval-plain-json": (["eval", "{molecule}", "--model", "{plain_json}"],
                        "{plain_json}: not a model file"),
    "eval-unknown-element": (["eval", "{copper}", "--model", "{dp}"],
                             "--config whose model.type_map is ['O', 'H', 'Cu']"),
    "describe-unknown-element": (["describe", "{copper}", "-o", "{out}.npz"],
                                 "the default model has type_map=['O', 'H']"),
    "describe-out-noext": (["describe", "-o", "{out}"], "-o {out}: the output must end"),
    "eval-out-noext": (["eval", "{molecule}", "--model", "{dp}", "-o", "{out}"],
                       "-o {out}: the output must end"),
    "train-steps-0": (["train", "{input}", "--steps", "0"],
                      "--steps: 0: must be a positive number"),
    "train-restart-from-dp": (["train", "{input}", "--restart", "{dp}", "--output", "{out}"],
                              "--restart {dp}: a deepmd-kit model file"),
    "test-numb-test-0": (["test", "--model", "{dp}", "--system", "{system}", "--numb-test",
                          "0"], "--numb-test 0"),
    "eval-head-on-dp": (["eval", "{molecule}", "--model", "{dp}", "--head", "x"],
                        "{dp}: head='x'"),
    "test-folder-without-systems": (["test", "--model", "{dp}", "--system", "{folder}"],
                                    "{folder}: not a deepmd system"),
    "bad-backend": (["eval", "{molecule}", "--model", "{dp}", "--backend", "tf"],
                    "invalid choice: 'tf'"),
    "describe-corrupt-poscar": (["describe", "{corrupt_poscar}", "-o", "{out}.npz"],
                                "{corrupt_poscar}: cannot read it as a structure"),
    "md-empty-xyz": (["md", "{empty_xyz}", "--model", "{dp}", "-q", "-o", "{out}.traj"],
                     "{empty_xyz}: empty file"),
    "md-corrupt-xyz": (["md", "{corrupt_xyz}", "--model", "{dp}", "-q", "-o", "{out}.traj"],
                       "{corrupt_xyz}, line 4: cannot read it as a structure"),
    "md-corrupt-poscar": (["md", "{corrupt_poscar}", "--model", "{dp}", "-q", "-o",
                           "{out}.traj"], "{corrupt_poscar}: cannot read it as a structure"),
    "md-missing-structure": (["md", "{missing}", "--model", "{dp}", "-q", "-o", "{out}.traj"],
                             "{missing}: no such file or directory"),
    "md-corrupt-dp": (["md", "{molecule}", "--model", "{corrupt_dp}", "-q"],
                      "{corrupt_dp}: a damaged HDF5 file"),
    "md-input-as-model": (["md", "{molecule}", "--model", "{input}", "-q"],
                          "{input}: a deepmd-kit training input"),
    "md-unknown-element": (["md", "{copper}", "--model", "{dp}", "-q", "-o", "{out}.traj"],
                           "--config whose model.type_map is ['O', 'H', 'Cu']"),
    "freeze-corrupt-dp": (["freeze", "{corrupt_dp}", "-o", "{out}.dp"],
                          "{corrupt_dp}: a damaged HDF5 file"),
    "freeze-input-as-model": (["freeze", "{input}", "-o", "{out}.dp"],
                              "{input}: a deepmd-kit training input"),
    "freeze-describe-output": (["freeze", "{describe_npz}", "-o", "{out}.jaxexport"],
                               "{describe_npz}: the output of `dpa2 describe`"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_naming_the_file(case, files, tmp_path, capsys):
    names = {**{k: str(v) for k, v in files.items()}, "out": str(tmp_path / "out_noext"),
             "folder": str(tmp_path)}
    argv, expected = CASES[case]
    try:
        rc = main([a.format(**names) for a in argv])
    except SystemExit as exit_:  # argparse's own errors
        rc = exit_.code
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected.format(**names) in lines[0], lines[0]
    assert "Traceback" not in err


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_has_every_option_explained_with_defaults_and_no_markup():
    parser = build_parser()
    for name, sub in _subparsers(parser).items():
        text = sub.format_help()
        assert "``" not in text and ":func:" not in text, name
        for action in sub._actions:
            if action.dest in ("help",):
                continue
            assert action.help, f"dpa2 {name} {action.option_strings or action.dest}: no help"
            if action.default not in (None, False) and action.option_strings:
                assert f"(default: {action.default})" in text, (name, action.dest)
    assert "``" not in parser.format_help()


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    import dpa2_core

    assert capsys.readouterr().out.strip() == f"dpa2 {dpa2_core.__version__}"
