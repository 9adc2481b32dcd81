"""Pooling: hand-computed values, padding never leaks in, and the sentence-transformers config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sentsim.errors import ModelLoadError
from sentsim.pooling import (
    PoolingMode,
    cls_pool,
    max_pool,
    mean_pool,
    mean_sqrt_len_pool,
    pool,
    pooling_config,
    read_pooling_config,
)

# One text of 3 real tokens then 2 padding positions; width 2.
TOKENS = torch.tensor([[[1.0, -4.0], [3.0, -2.0], [5.0, -6.0], [0.0, 0.0], [0.0, 0.0]]])
MASK = torch.tensor([[1, 1, 1, 0, 0]])


def test_mean_pool_hand_computed() -> None:
    """Mean of the three real tokens only: ([1,3,5]/3, [-4,-2,-6]/3)."""
    torch.testing.assert_close(mean_pool(TOKENS, MASK), torch.tensor([[3.0, -4.0]]))


def test_mean_sqrt_len_pool_hand_computed() -> None:
    """The sum of the three real tokens over √3: ([9, -12] / √3)."""
    expected = torch.tensor([[9.0, -12.0]]) / 3**0.5
    torch.testing.assert_close(mean_sqrt_len_pool(TOKENS, MASK), expected)


def test_max_pool_hand_computed_with_all_negative_dimension() -> None:
    """Padding zeros must not win the max of a dimension whose real values are all negative."""
    torch.testing.assert_close(max_pool(TOKENS, MASK), torch.tensor([[5.0, -2.0]]))


def test_cls_pool_takes_first_token() -> None:
    torch.testing.assert_close(cls_pool(TOKENS, MASK), torch.tensor([[1.0, -4.0]]))


def test_cls_pool_takes_the_first_token_the_mask_keeps() -> None:
    """With a prompt's tokens masked out (``include_prompt=False``) it took ``[CLS]`` anyway,
    where sentence-transformers takes the text's first token."""
    after_prompt = torch.tensor([[0, 0, 1, 0, 0]])
    torch.testing.assert_close(cls_pool(TOKENS, after_prompt), torch.tensor([[5.0, -6.0]]))


@pytest.mark.parametrize("mode", list(PoolingMode))
def test_padding_values_do_not_change_the_result(mode: PoolingMode) -> None:
    """Whatever the transformer leaves at padded positions, the pooled vector is the same."""
    noisy = TOKENS.clone()
    noisy[0, 3:] = torch.tensor([[100.0, 100.0], [-100.0, 50.0]])
    torch.testing.assert_close(pool(noisy, MASK, mode), pool(TOKENS, MASK, mode))


@pytest.mark.parametrize("mode", list(PoolingMode))
def test_padded_batch_equals_each_text_alone(mode: PoolingMode) -> None:
    """A short text padded inside a batch pools like the same text with no padding."""
    torch.manual_seed(0)
    tokens = torch.randn(2, 6, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]])
    batched = pool(tokens, mask, mode)
    alone = pool(tokens[1:, :2], mask[1:, :2], mode)
    torch.testing.assert_close(batched[1:], alone)
    assert batched.shape == (2, 4)


def test_mean_pool_of_fully_masked_row_is_zero_not_nan() -> None:
    out = mean_pool(torch.ones(1, 3, 2), torch.zeros(1, 3, dtype=torch.long))
    torch.testing.assert_close(out, torch.zeros(1, 2))


@pytest.mark.parametrize("mode", list(PoolingMode))
def test_config_round_trip(tmp_path: Path, mode: PoolingMode) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(pooling_config(mode, 32)))
    assert read_pooling_config(path) == (mode, 32, True)


def test_config_has_exactly_one_mode_set() -> None:
    """The written config is what sentence-transformers expects: one pooling_mode_* is true."""
    config = pooling_config(PoolingMode.MAX, 8)
    chosen = [k for k, v in config.items() if k.startswith("pooling_mode") and v]
    assert chosen == ["pooling_mode_max_tokens"]
    assert config["word_embedding_dimension"] == 8


def test_reads_the_single_key_format_of_newer_sentence_transformers(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"embedding_dimension": 16, "pooling_mode": "CLS"}))
    assert read_pooling_config(path) == (PoolingMode.CLS, 16, True)  # the size was None


def test_include_prompt_false_is_read_and_a_non_boolean_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**pooling_config(PoolingMode.MEAN, 8), "include_prompt": False}))
    assert read_pooling_config(path).include_prompt is False
    path.write_text(json.dumps({**pooling_config(PoolingMode.MEAN, 8), "include_prompt": "no"}))
    with pytest.raises(ModelLoadError, match='"include_prompt" must be true or false'):
        read_pooling_config(path)


@pytest.mark.parametrize("mode", ["lasttoken", ["mean", "max"]])
def test_an_unsupported_single_key_mode_raises_naming_the_file(
    tmp_path: Path, mode: object
) -> None:
    """It raised a bare ValueError, "unknown pooling \"['mean', 'max']\"", naming no file."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"embedding_dimension": 16, "pooling_mode": mode}))
    supported = "supports pooling_mode mean, cls, max or mean_sqrt_len_tokens"
    with pytest.raises(ModelLoadError, match=supported) as info:
        read_pooling_config(path)
    assert str(path) in str(info.value)


def test_config_with_no_mode_raises(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"word_embedding_dimension": 8, "pooling_mode_cls_token": False}))
    with pytest.raises(ModelLoadError, match=r"exactly one of .* set to true; found \[\]") as info:
        read_pooling_config(path)
    assert str(path) in str(info.value)


def test_config_with_two_modes_raises_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    config = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}
    path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="exactly one of") as info:
        read_pooling_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "'pooling_mode_cls_token', 'pooling_mode_mean_tokens'" in message


def test_config_with_only_an_unsupported_mode_raises(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"pooling_mode_weightedmean_tokens": True}))
    with pytest.raises(ModelLoadError, match="found \\['pooling_mode_weightedmean_tokens'\\]"):
        read_pooling_config(path)


def test_missing_config_raises_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "1_Pooling" / "config.json"
    with pytest.raises(ModelLoadError, match="pooling config missing: expected") as info:
        read_pooling_config(path)
    assert str(path) in str(info.value)


def test_invalid_json_config_raises(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ModelLoadError, match="is not valid JSON"):
        read_pooling_config(path)


@pytest.mark.parametrize("name", ["mean", "MEAN", "cls", "Max", PoolingMode.MAX])
def test_parse_accepts_names_in_any_case(name: str) -> None:
    assert PoolingMode.parse(name) == PoolingMode(str(name).lower())


def test_bad_mode_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown pooling 'avg'; expected one of: mean, cls, max"):
        PoolingMode.parse("avg")


@pytest.mark.parametrize(
    ("content", "error"), [(b"[1]", "must hold an object; found list"), (b"\xff{}", "not UTF-8")]
)
def test_a_config_that_is_not_an_object_of_text_raises_naming_it(
    tmp_path: Path, content: bytes, error: str
) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=error) as info:
        read_pooling_config(path)
    assert str(path) in str(info.value)
