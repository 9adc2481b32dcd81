"""Pooling: hand-computed values, padding never leaks in (on either side), modes concatenated,
and the sentence-transformers config. tests/test_pooling_st.py checks the same against
sentence-transformers' own vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sentsim.errors import ModelLoadError
from sentsim.pooling import (
    PoolingMode,
    cls_pool,
    exclude_prompt,
    last_token_pool,
    max_pool,
    mean_pool,
    mean_sqrt_len_pool,
    parse_pooling,
    pool,
    pooled_width,
    pooling_config,
    read_pooling_config,
    weighted_mean_pool,
)

# One text of 3 real tokens then 2 padding positions; width 2.
TOKENS = torch.tensor([[[1.0, -4.0], [3.0, -2.0], [5.0, -6.0], [0.0, 0.0], [0.0, 0.0]]])
MASK = torch.tensor([[1, 1, 1, 0, 0]])
# The same text padded on the left, as a decoder's tokenizer pads it.
LEFT_TOKENS = torch.cat([TOKENS[:, 3:], TOKENS[:, :3]], dim=1)
LEFT_MASK = torch.tensor([[0, 0, 1, 1, 1]])


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


def test_weighted_mean_pool_hand_computed() -> None:
    """Weights 1, 2, 3 by position: ([1·1 + 3·2 + 5·3] / 6, [-4·1 - 2·2 - 6·3] / 6)."""
    expected = torch.tensor([[22.0, -26.0]]) / 6
    torch.testing.assert_close(weighted_mean_pool(TOKENS, MASK), expected)


def test_last_token_pool_takes_the_last_token_the_mask_keeps() -> None:
    """The third token, not the last position (padding) of the row."""
    torch.testing.assert_close(last_token_pool(TOKENS, MASK), torch.tensor([[5.0, -6.0]]))


def test_last_token_pool_of_fully_masked_row_is_zero() -> None:
    """As sentence-transformers gives it: no token is kept, so none is taken."""
    out = last_token_pool(torch.ones(1, 3, 2), torch.zeros(1, 3, dtype=torch.long))
    torch.testing.assert_close(out, torch.zeros(1, 2))


@pytest.mark.parametrize("mode", list(PoolingMode))
def test_left_padding_pools_like_right_padding(mode: PoolingMode) -> None:
    """The padding before the text (a decoder's) changes nothing: cls takes the text's first
    token, lasttoken its last, weightedmean weighs it 1, 2, 3 from its first."""
    torch.testing.assert_close(pool(LEFT_TOKENS, LEFT_MASK, mode), pool(TOKENS, MASK, mode))


@pytest.mark.parametrize("mode", list(PoolingMode))
def test_a_prompt_is_left_out_after_any_left_padding(mode: PoolingMode) -> None:
    """``prompt_length`` 1 leaves out the text's first token, not the first position (padding,
    when the text is padded on the left): both sides pool alike."""
    assert exclude_prompt(MASK, 1).tolist() == [[0, 1, 1, 0, 0]]
    assert exclude_prompt(LEFT_MASK, 1).tolist() == [[0, 0, 0, 1, 1]]
    right = pool(TOKENS, MASK, mode, prompt_length=1)
    torch.testing.assert_close(pool(LEFT_TOKENS, LEFT_MASK, mode, prompt_length=1), right)
    if mode != PoolingMode.WEIGHTED_MEAN:  # which keeps the prompt's positions (next test)
        torch.testing.assert_close(right, pool(TOKENS[:, 1:], MASK[:, 1:], mode))


def test_weighted_mean_keeps_the_weights_a_left_out_prompt_gave_the_text() -> None:
    """Weights 2, 3 for the tokens after a 1-token prompt, as in prompt + text (not 1, 2):
    ([3·2 + 5·3] / 5, [-2·2 - 6·3] / 5)."""
    expected = torch.tensor([[21.0, -22.0]]) / 5
    for tokens, mask in [(TOKENS, MASK), (LEFT_TOKENS, LEFT_MASK)]:
        torch.testing.assert_close(
            pool(tokens, mask, PoolingMode.WEIGHTED_MEAN, prompt_length=1), expected
        )


def test_several_modes_concatenate_in_the_order_named() -> None:
    """cls + mean + max of 2-d tokens is one 6-d vector, each mode's in turn."""
    pooling = parse_pooling(["cls", "mean", "max"])
    assert pooled_width(pooling, 2) == 6
    expected = torch.tensor([[1.0, -4.0, 3.0, -4.0, 5.0, -2.0]])
    torch.testing.assert_close(pool(TOKENS, MASK, pooling), expected)
    swapped = pool(TOKENS, MASK, parse_pooling(["max", "cls"]))
    torch.testing.assert_close(swapped, torch.tensor([[5.0, -2.0, 1.0, -4.0]]))


def test_parse_pooling_reads_one_name_or_several() -> None:
    assert parse_pooling("LastToken") == PoolingMode.LAST_TOKEN
    assert parse_pooling(["weightedmean"]) == PoolingMode.WEIGHTED_MEAN  # as sentence-transformers
    assert parse_pooling(("cls", "cls")) == (PoolingMode.CLS, PoolingMode.CLS)
    with pytest.raises(ValueError, match="no mode given"):
        parse_pooling([])
    with pytest.raises(ValueError, match="unknown pooling 'sum'"):
        parse_pooling(["mean", "sum"])


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


@pytest.mark.parametrize(
    "pooling",
    [
        *PoolingMode,
        (PoolingMode.CLS, PoolingMode.MEAN, PoolingMode.MAX),
        (PoolingMode.MEAN, PoolingMode.CLS),
        (PoolingMode.LAST_TOKEN, PoolingMode.LAST_TOKEN),
    ],
)
@pytest.mark.parametrize("include_prompt", [True, False])
def test_config_round_trip(
    tmp_path: Path, pooling: PoolingMode | tuple[PoolingMode, ...], include_prompt: bool
) -> None:
    """What is written reads back: the modes in their order, the token width, include_prompt."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(pooling_config(pooling, 32, include_prompt=include_prompt)))
    assert read_pooling_config(path) == (pooling, 32, include_prompt)


def test_modes_in_sentence_transformers_order_are_written_as_flags() -> None:
    """The flags every sentence-transformers version reads, where they can say it: cls, max,
    mean (the order they concatenate in)."""
    config = pooling_config(parse_pooling(["cls", "max", "mean"]), 8)
    chosen = [k for k, v in config.items() if k.startswith("pooling_mode") and v]
    assert set(chosen) == {
        "pooling_mode_cls_token",
        "pooling_mode_mean_tokens",
        "pooling_mode_max_tokens",
    }
    assert config["word_embedding_dimension"] == 8


@pytest.mark.parametrize(
    ("names", "written"),
    [
        (["mean", "cls"], ["mean", "cls"]),
        (["cls", "mean", "max"], ["cls", "mean", "max"]),
        (["lasttoken", "mean_sqrt_len"], ["lasttoken", "mean_sqrt_len_tokens"]),
        (["max", "max"], ["max", "max"]),
    ],
)
def test_modes_the_flags_cannot_order_are_written_as_a_list(
    names: list[str], written: list[str]
) -> None:
    """The flags concatenate in one fixed order (cls, max, mean, ...), each mode once: another
    order, or a mode twice, is written as sentence-transformers 6's list, in its names."""
    config = pooling_config(parse_pooling(names), 8, include_prompt=False)
    assert config == {"embedding_dimension": 8, "pooling_mode": written, "include_prompt": False}


def test_config_has_exactly_one_mode_set() -> None:
    """The written config of one mode is what sentence-transformers 2–5 read: one flag true."""
    config = pooling_config(PoolingMode.MAX, 8)
    chosen = [k for k, v in config.items() if k.startswith("pooling_mode") and v]
    assert chosen == ["pooling_mode_max_tokens"]
    assert config["word_embedding_dimension"] == 8


def test_reads_the_single_key_format_of_newer_sentence_transformers(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"embedding_dimension": 16, "pooling_mode": "CLS"}))
    assert read_pooling_config(path) == (PoolingMode.CLS, 16, True)  # the size was None
    names = ["mean_sqrt_len_tokens", "lasttoken", "weightedmean"]
    path.write_text(json.dumps({"embedding_dimension": 16, "pooling_mode": names}))
    modes = (PoolingMode.MEAN_SQRT_LEN, PoolingMode.LAST_TOKEN, PoolingMode.WEIGHTED_MEAN)
    assert read_pooling_config(path) == (modes, 16, True)
    path.write_text(json.dumps({"embedding_dimension": 16, "pooling_mode": ["lasttoken"]}))
    assert read_pooling_config(path).pooling == PoolingMode.LAST_TOKEN


def test_include_prompt_false_is_read_and_a_non_boolean_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**pooling_config(PoolingMode.MEAN, 8), "include_prompt": False}))
    assert read_pooling_config(path).include_prompt is False
    path.write_text(json.dumps({**pooling_config(PoolingMode.MEAN, 8), "include_prompt": "no"}))
    with pytest.raises(ModelLoadError, match='"include_prompt" must be true or false'):
        read_pooling_config(path)


@pytest.mark.parametrize("mode", ["sum", ["mean", "sum"], [], 3, [["cls"]]])
def test_an_unknown_single_key_mode_raises_naming_the_file(tmp_path: Path, mode: object) -> None:
    """It raised a bare ValueError, "unknown pooling \"['mean', 'max']\"", naming no file."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"embedding_dimension": 16, "pooling_mode": mode}))
    supported = (
        "supports pooling_mode cls, max, mean, mean_sqrt_len_tokens, weightedmean, lasttoken, "
        "or a list of them"
    )
    with pytest.raises(ModelLoadError, match=supported) as info:
        read_pooling_config(path)
    assert str(path) in str(info.value) and f"found {mode!r}" in str(info.value)


def test_config_with_no_mode_raises(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"word_embedding_dimension": 8, "pooling_mode_cls_token": False}))
    with pytest.raises(
        ModelLoadError, match=r"'pooling_mode_lasttoken'\] set to true .*found \[\]"
    ) as info:
        read_pooling_config(path)
    assert str(path) in str(info.value)


def test_config_with_several_flags_concatenates_in_sentence_transformers_order(
    tmp_path: Path,
) -> None:
    """cls, max, mean, mean_sqrt_len, weightedmean, lasttoken, whatever the keys' order in the
    file: the order sentence-transformers concatenates them in. Two flags were refused."""
    path = tmp_path / "config.json"
    config = {
        "pooling_mode_lasttoken": True,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_cls_token": True,
    }
    path.write_text(json.dumps(config))
    modes = (PoolingMode.CLS, PoolingMode.MEAN, PoolingMode.LAST_TOKEN)
    assert read_pooling_config(path) == (modes, None, True)


@pytest.mark.parametrize("others", [{}, {"pooling_mode_mean_tokens": True}])
def test_config_with_an_unknown_flag_raises_naming_it(tmp_path: Path, others: dict) -> None:
    """Also beside a known one: the vectors would lack the part the unknown flag asks for."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**others, "pooling_mode_sum_tokens": True}))
    with pytest.raises(ModelLoadError, match=r"found \[.*'pooling_mode_sum_tokens'\]") as info:
        read_pooling_config(path)
    assert str(path) in str(info.value)


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
    valid = "mean, cls, max, mean_sqrt_len, weightedmean, lasttoken"
    with pytest.raises(ValueError, match=f"unknown pooling 'avg'; expected one of: {valid}"):
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
