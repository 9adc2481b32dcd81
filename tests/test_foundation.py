"""Input checks (base), model names (models), paths (settings), error types, the backend seam."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentsim import errors
from sentsim.backend import TorchTransformer, check_model_dir, default_device, quiet_transformers
from sentsim.base import check_pairs, check_texts, length_order
from sentsim.models import RESOURCES, builtin_names, resolve_model_path
from sentsim.settings import DATA_ENV, data_root, dataset_path

# --- base ---------------------------------------------------------------------------------------


def test_check_texts_accepts_any_sequence_and_returns_a_list() -> None:
    assert check_texts(("a", "", "é")) == ["a", "", "é"]
    assert check_texts([]) == []
    assert check_texts(t for t in ["x"]) == ["x"]  # type: ignore[arg-type]


def test_check_texts_names_the_first_bad_item() -> None:
    with pytest.raises(TypeError, match="item 1 is float, expected str"):
        check_texts(["a", 1.5, None])  # type: ignore[list-item]


def test_check_texts_refuses_a_bare_string() -> None:
    """A str is a sequence of characters; encoding it letter by letter is never what was meant."""
    with pytest.raises(TypeError, match="got a single str"):
        check_texts("hello")


def test_check_pairs() -> None:
    assert check_pairs([("a", "b"), ["c", "d"]]) == [("a", "b"), ("c", "d")]  # type: ignore[list-item]
    assert check_pairs([]) == []
    with pytest.raises(
        TypeError, match=r"pair 1 must be two strings \(text_a, text_b\); got \('x', 'y', 'z'\)"
    ):
        check_pairs([("a", "b"), ("x", "y", "z")])  # type: ignore[list-item]


def test_check_pairs_takes_the_rows_of_a_numpy_array() -> None:
    """``np.array(pairs)`` (or a DataFrame's ``.to_numpy()``) was refused: "pair 0 must be two
    strings ... got array(['a', 'b'])", of a row that is two strings."""
    pairs = check_pairs(np.array([("a", "b"), ("c", "d")]))  # type: ignore[arg-type]
    assert pairs == [("a", "b"), ("c", "d")]
    assert all(type(x) is str for pair in pairs for x in pair)
    with pytest.raises(TypeError, match=r"pair 0 must be two strings"):
        check_pairs(np.array([("a", "b", "c")]))  # type: ignore[arg-type]


def test_check_pairs_refuses_a_bare_pair_or_string() -> None:
    """A single pair was read as two pairs, "a" and "b": "pair 0 must be two strings; got 'a'"."""
    with pytest.raises(TypeError, match="got a single pair; wrap it in a list"):
        check_pairs(("a dog", "a cat"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got a single str"):
        check_pairs("ab")  # type: ignore[arg-type]


def test_length_order_is_longest_first_and_stable() -> None:
    """Equal lengths keep their input order, so the batching of ties is deterministic."""
    order = length_order(["bb", "a", "cccc", "dd", ""])
    assert order.tolist() == [2, 0, 3, 1, 4]
    assert length_order([]).shape == (0,)
    assert order.dtype == np.intp


# --- models -------------------------------------------------------------------------------------


def test_builtin_names_include_aliases_and_shipped_models() -> None:
    names = builtin_names()
    assert {"minilm", "all-minilm-l6-v2", "static-minilm"} <= set(names)
    assert names == sorted(names)


def test_minilm_resolves_to_a_model_directory() -> None:
    path = resolve_model_path("minilm")
    assert (path / "config.json").is_file()
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == path


def test_shipped_model_resolves_into_resources() -> None:
    assert resolve_model_path("static-minilm") == RESOURCES / "models" / "static-minilm"


def test_user_directory_resolves_to_itself(tmp_path: Path) -> None:
    assert resolve_model_path(tmp_path) == tmp_path
    assert resolve_model_path(str(tmp_path)) == tmp_path


def test_unknown_name_raises_listing_builtins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(errors.ModelLoadError) as info:
        resolve_model_path("mini-lm")
    message = str(info.value)
    assert "model 'mini-lm' not found" in message
    assert "static-minilm" in message
    assert str(tmp_path / "mini-lm") in message


# --- settings -----------------------------------------------------------------------------------


def test_data_root_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert data_root() == tmp_path


def test_data_root_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert data_root() == Path("..") / "shared" / "data"


def test_dataset_path_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "sts").mkdir()
    (tmp_path / "sts" / "test.csv").write_text("x")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert dataset_path("sts", "test.csv") == tmp_path / "sts" / "test.csv"


def test_dataset_path_missing_names_the_set_and_where_it_looked(no_data: Path) -> None:
    with pytest.raises(errors.DatasetMissingError) as info:
        dataset_path("stsbenchmark", "sts-test.csv")
    message = str(info.value)
    assert "stsbenchmark/sts-test.csv not found" in message
    assert str(no_data.resolve() / "stsbenchmark" / "sts-test.csv") in message
    assert DATA_ENV in message


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (errors.DataError, ValueError),
        (errors.ModelLoadError, FileNotFoundError),
        (errors.DatasetMissingError, FileNotFoundError),
        (errors.IndexFormatError, ValueError),
        (errors.IndexExistsError, FileExistsError),
        (errors.IndexLockedError, RuntimeError),
        (errors.EncoderMismatchError, ValueError),
    ],
)
def test_errors_are_sentsim_errors_and_builtin_kinds(error: type, builtin: type) -> None:
    """Callers can catch either SentsimError (the CLI does) or the familiar built-in type."""
    assert issubclass(error, errors.SentsimError)
    assert issubclass(error, builtin)


# --- backend ------------------------------------------------------------------------------------


def test_default_device_is_cuda_or_cpu() -> None:
    import torch

    assert default_device() == ("cuda" if torch.cuda.is_available() else "cpu")


def test_quiet_transformers_restores_verbosity() -> None:
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    with quiet_transformers():
        assert hf_logging.get_verbosity() == hf_logging.ERROR
    assert hf_logging.get_verbosity() == before


def test_check_model_dir_accepts_the_tiny_bert(tiny_bert_dir: Path) -> None:
    check_model_dir(tiny_bert_dir)  # raises on failure


def test_transformer_tokenize_truncates_and_pads(tiny_bert_dir: Path) -> None:
    transformer = TorchTransformer(tiny_bert_dir, max_seq_length=6, device="cpu")
    features = transformer.tokenize(["dog cat man woman girl boy guitar", "  dog  "])
    assert features["input_ids"].shape == (2, 6)
    assert features["attention_mask"].tolist() == [[1] * 6, [1, 1, 1, 0, 0, 0]]
    hidden = transformer.forward(features)
    assert tuple(hidden.shape) == (2, 6, transformer.dim)


@pytest.mark.parametrize(("lower", "expected"), [(True, ["dog café"]), (False, ["DOG Café"])])
def test_transformer_strips_and_lower_cases_when_configured(
    tiny_bert_dir: Path, lower: bool, expected: list[str]
) -> None:
    """What reaches the tokenizer: stripped, and lower-cased only with do_lower_case."""
    transformer = TorchTransformer(tiny_bert_dir, do_lower_case=lower, device="cpu")
    seen: list[list[str]] = []
    real = transformer.tokenizer

    def recording(texts: list[str], **kwargs: object) -> object:
        seen.append(list(texts))
        return real(texts, **kwargs)

    transformer.tokenizer = recording
    transformer.tokenize(["  DOG Café \n"])
    assert seen == [expected]


def test_the_package_exports_the_similarity_function_after_its_module_is_imported() -> None:
    """``from sentsim import similarity`` is the function even once a model has imported the module
    of the same name (the package attribute that import sets would otherwise win)."""
    import subprocess
    import sys

    code = (
        "import sentsim.bi_encoder, sentsim.similarity\n"
        "from sentsim import Metric, similarity\n"
        "import sentsim\n"
        "assert callable(similarity) and sentsim.similarity is similarity, similarity\n"
        "print(similarity([[1.0, 0.0]], [[1.0, 0.0]])[0, 0], Metric.COSINE)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "1.0"


def test_a_folder_named_like_a_built_in_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The built-in won without a word, so a user's own ./bi-sts was never loaded."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bi-sts").mkdir()
    with caplog.at_level("WARNING", logger="sentsim.models"):
        assert resolve_model_path("bi-sts") == RESOURCES / "models" / "bi-sts"
    assert "write ./bi-sts for the folder" in caplog.text
    assert resolve_model_path("./bi-sts") == Path("./bi-sts")


def _truncate_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])


def _pickle_garbage(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not a state dict")


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (_truncate_weights, r"model\.safetensors cannot be read as weights"),
        (_pickle_garbage, r"pytorch_model\.bin cannot be read as weights"),
        (lambda f: (f / "config.json").write_text("{"), r"config\.json.* is not a valid JSON"),
        (lambda f: (f / "config.json").write_text("[]"), r"(model_type|must be a mapping)"),
        (lambda f: (f / "tokenizer.json").write_text("{"), r"tokenizer\.json is not valid JSON"),
        (lambda f: (f / "tokenizer.json").write_text('{"a": 1}'), r"KeyError: 'added_tokens'"),
    ],
)
@pytest.mark.parametrize("kind", ["bi", "cross"])
def test_a_damaged_model_file_is_one_load_error_naming_the_folder(
    tiny_st_dir: Path, tiny_ce_dir: Path, tmp_path: Path, damage: Any, error: str, kind: str
) -> None:
    """A truncated download or a file edited by hand ended in an error from inside safetensors,
    torch, json or transformers (a SafetensorError about headers, a bare JSONDecodeError, a
    KeyError, an UnpicklingError advising weights_only=False), which the CLI shows as a
    traceback; now it is a ModelLoadError that names the folder and keeps the cause."""
    import shutil

    from sentsim.bi_encoder import BiEncoder
    from sentsim.cross_encoder import CrossEncoder

    folder = tmp_path / "model"
    shutil.copytree(tiny_st_dir if kind == "bi" else tiny_ce_dir, folder)
    damage(folder)
    load = BiEncoder.load if kind == "bi" else CrossEncoder.load
    with pytest.raises(errors.ModelLoadError, match=rf"^{folder}: (?s:.*){error}") as info:
        load(folder, device="cpu")
    assert "weights_only" not in str(info.value)  # torch's advice to unpickle the file anyway
