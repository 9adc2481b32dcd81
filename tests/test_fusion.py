"""Fusing a cross-encoder with a bi-encoder's cosine: formula, weight choice, stored config."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentsim.bi_encoder import BiEncoder
from sentsim.cross_encoder import CrossEncoder
from sentsim.errors import ModelLoadError
from sentsim.evaluation.scorers import EncoderPairScorer
from sentsim.fusion import (
    CrossEncoderScorer,
    ExtraTerm,
    FusedScorer,
    FusionConfig,
    choose_weight,
    fuse,
    load_judge,
    model_reference,
    read_fusion,
    stored_model_path,
    write_fusion,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = FusionConfig(
    bi_encoder="tiny-bi",
    weight=0.25,
    ce_mean=0.5,
    ce_std=0.2,
    bi_mean=0.6,
    bi_std=0.1,
    selected_on="dev.csv",
)
EXTRA = {"bi_encoder": "b", "weight": 0.1, "mean": 0.4, "std": 0.2}
PAIRS = [
    ("my card was declined", "why was my payment declined"),
    ("a man plays guitar", "a woman is eating food"),
    ("the dog", "cat"),
]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_fuse_by_hand() -> None:
    """``sigmoid(w (ce − μ_ce)/σ_ce + (1 − w)(cos − μ_cos)/σ_cos)``, elementwise, float32."""
    ce = np.array([0.9, 0.5, 0.1])
    cos = np.array([0.7, 0.6, 0.8])
    # z_ce = (2, 0, −2); z_cos = (1, 0, 2); 0.25 z_ce + 0.75 z_cos = (1.25, 0, 1.0).
    expected = [_sigmoid(1.25), 0.5, _sigmoid(1.0)]
    got = fuse(ce, cos, CONFIG)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_fuse_extreme_weights_follow_one_score() -> None:
    """``w = 1`` ignores the cosine; ``w = 0`` ignores the cross-encoder."""
    ce, cos = np.array([0.9, 0.1]), np.array([0.2, 0.95])
    only_ce = fuse(ce, cos, replace(CONFIG, weight=1.0))
    only_cos = fuse(ce, cos, replace(CONFIG, weight=0.0))
    np.testing.assert_allclose(only_ce, [_sigmoid(2.0), _sigmoid(-2.0)], rtol=1e-6)
    np.testing.assert_allclose(only_cos, [_sigmoid(-4.0), _sigmoid(3.5)], rtol=1e-6)


THREE_WAY = replace(CONFIG, weight=0.2, extra=(ExtraTerm("other-bi", 0.5, 0.4, 0.2),))


def test_fuse_three_way_by_hand() -> None:
    """An extra bi-encoder adds ``wᵢ · z(cosᵢ)``; the first bi-encoder keeps ``1 − w − Σ wᵢ``."""
    ce, cos, other = np.array([0.9, 0.5]), np.array([0.7, 0.6]), np.array([0.2, 0.8])
    # z_ce = (2, 0); z_cos = (1, 0); z_other = (−1, 2); weights 0.2 / 0.3 / 0.5.
    assert THREE_WAY.bi_weight == 0.3
    assert THREE_WAY.bi_encoders == ["tiny-bi", "other-bi"]
    expected = [_sigmoid(0.4 + 0.3 - 0.5), _sigmoid(1.0)]
    np.testing.assert_allclose(fuse(ce, cos, THREE_WAY, [other]), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="1 extra bi-encoder"):
        fuse(ce, cos, THREE_WAY)


def _fine_gold_and_noise(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Gold scores spaced finely, and an unrelated score: any weight on the noise breaks ties."""
    rng = np.random.default_rng(0)
    return np.linspace(0.0, 5.0, n), rng.normal(size=n)


def test_choose_weight_picks_1_when_the_cross_encoder_equals_gold() -> None:
    gold, noise = _fine_gold_and_noise()
    config, spearman = choose_weight(gold, noise, gold, bi_encoder="bi", selected_on="dev.csv")
    assert config.weight == 1.0
    assert spearman == pytest.approx(100.0)
    assert (config.bi_encoder, config.selected_on) == ("bi", "dev.csv")
    assert config.ce_mean == pytest.approx(gold.mean())
    assert config.ce_std == pytest.approx(gold.std())
    assert config.bi_mean == pytest.approx(noise.mean())
    assert config.bi_std == pytest.approx(noise.std())


def test_choose_weight_picks_0_when_the_cosine_equals_gold() -> None:
    gold, noise = _fine_gold_and_noise()
    config, spearman = choose_weight(noise, gold, gold, bi_encoder="bi", selected_on="dev.csv")
    assert config.weight == 0.0
    assert spearman == pytest.approx(100.0)


def test_choose_weight_over_three_scores_finds_the_one_that_is_gold() -> None:
    """With an extra bi-encoder every weight vector on the grid is tried; the gold one gets all."""
    gold, noise = _fine_gold_and_noise()
    other = np.random.default_rng(1).normal(size=gold.size)
    config, spearman = choose_weight(
        noise, other, gold, bi_encoder="bi", selected_on="dev.csv", extra=[("gold-bi", gold)]
    )
    assert spearman == pytest.approx(100.0)
    assert (config.weight, config.bi_weight) == (0.0, 0.0)
    (term,) = config.extra
    assert (term.bi_encoder, term.weight) == ("gold-bi", 1.0)
    assert (term.mean, term.std) == (pytest.approx(gold.mean()), pytest.approx(gold.std()))


def test_choose_weight_three_way_never_below_two_way() -> None:
    """The two-way weights are on the three-way grid (extra weight 0), so it can only gain."""
    rng = np.random.default_rng(2)
    gold = np.linspace(0.0, 5.0, 300)
    ce, cos, other = (gold + rng.normal(scale=s, size=gold.size) for s in (2.0, 1.5, 1.5))
    _, two_score = choose_weight(ce, cos, gold, bi_encoder="bi", selected_on="")
    three, three_score = choose_weight(
        ce, cos, gold, bi_encoder="bi", selected_on="", extra=[("other", other)]
    )
    assert three_score >= two_score
    assert three.extra[0].weight > 0  # independent noise: averaging a third score helps
    total = three.weight + three.bi_weight + three.extra[0].weight
    assert total == pytest.approx(1.0)


def test_choose_weight_with_a_constant_score_does_not_divide_by_zero() -> None:
    """A constant cross-encoder has σ = 0, stored as 1 so that fusing stays finite."""
    gold, _ = _fine_gold_and_noise(20)
    config, spearman = choose_weight(np.full(20, 0.5), gold, gold, bi_encoder="bi", selected_on="")
    assert config.ce_std == 1.0
    assert spearman == pytest.approx(100.0)
    assert np.isfinite(fuse(np.full(20, 0.5), gold, config)).all()


def test_write_fusion_keeps_other_keys_and_reads_back(tmp_path: Path) -> None:
    (tmp_path / "sentsim_config.json").write_text(json.dumps({"max_length": 77, "note": "x"}))
    write_fusion(tmp_path, CONFIG)
    stored = json.loads((tmp_path / "sentsim_config.json").read_text())
    assert stored["max_length"] == 77 and stored["note"] == "x"
    assert read_fusion(tmp_path) == CONFIG
    newer = replace(CONFIG, weight=0.8)
    write_fusion(tmp_path, newer)  # overwriting keeps the other keys too
    assert read_fusion(tmp_path) == newer
    assert json.loads((tmp_path / "sentsim_config.json").read_text())["max_length"] == 77


def test_write_fusion_without_a_config_file(tmp_path: Path) -> None:
    assert read_fusion(tmp_path) is None
    write_fusion(tmp_path, CONFIG)
    assert read_fusion(tmp_path) == CONFIG


def test_three_way_fusion_reads_back(tmp_path: Path) -> None:
    write_fusion(tmp_path, THREE_WAY)
    stored = json.loads((tmp_path / "sentsim_config.json").read_text())["fusion"]
    assert stored["extra"] == [{"bi_encoder": "other-bi", "weight": 0.5, "mean": 0.4, "std": 0.2}]
    assert read_fusion(tmp_path) == THREE_WAY


def test_read_fusion_without_fusion_key(tmp_path: Path) -> None:
    (tmp_path / "sentsim_config.json").write_text(json.dumps({"max_length": 77}))
    assert read_fusion(tmp_path) is None


def test_fused_cross_encoder_still_loads_alone(tiny_ce_dir: Path, tmp_path: Path) -> None:
    """A fusion written beside a cross-encoder leaves it loadable, and a re-save keeps it."""
    judge_dir = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge_dir)
    before = CrossEncoder.load(judge_dir, max_length=40, device="cpu").save(judge_dir)
    write_fusion(before, CONFIG)
    model = CrossEncoder.load(judge_dir, device="cpu")
    assert model.max_length == 40
    model.save(judge_dir)
    assert read_fusion(judge_dir) == CONFIG


def test_cross_encoder_scorer_refuses_several_outputs(tiny_bert_dir: Path) -> None:
    nli = CrossEncoder.load(tiny_bert_dir, num_labels=3, device="cpu")
    with pytest.raises(ValueError, match="has 3 outputs; similarity needs one score"):
        CrossEncoderScorer(nli)


def test_load_judge_fuses_as_its_config_says(
    tiny_ce_dir: Path, tiny_st_dir: Path, tmp_path: Path
) -> None:
    """``load_judge`` scores ``fuse(symmetric ce, cos)``; with ``fused=False`` the CE alone."""
    judge_dir = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge_dir)
    config = replace(CONFIG, bi_encoder=str(tiny_st_dir), symmetric=True)
    write_fusion(judge_dir, config)
    ce = CrossEncoder.load(judge_dir, device="cpu").predict(PAIRS, symmetric=True)
    cos = EncoderPairScorer(BiEncoder.load(tiny_st_dir, device="cpu")).score_pairs(PAIRS)

    fused = load_judge(judge_dir)
    assert isinstance(fused, FusedScorer)
    assert "w=0.25" in fused.name
    np.testing.assert_allclose(fused.score_pairs(PAIRS), fuse(ce, cos, config), atol=1e-6)

    alone = load_judge(judge_dir, fused=False)
    assert isinstance(alone, CrossEncoderScorer)
    np.testing.assert_allclose(alone.score_pairs(PAIRS), ce, atol=1e-6)


def test_a_judge_ranks_by_the_score_it_gives(
    tiny_ce_dir: Path, tiny_st_dir: Path, tmp_path: Path
) -> None:
    """``load_judge(...).rank`` orders by the fused score (the judge's card), with the checks of
    ``CrossEncoder.rank``: a query that is no text or empty, top_k, no documents."""
    judge_dir = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge_dir)
    write_fusion(judge_dir, replace(CONFIG, bi_encoder=str(tiny_st_dir)))
    docs = ["a man plays a guitar", "the stock market fell", "someone plays music", "a cat"]
    for judge in (load_judge(judge_dir), load_judge(judge_dir, fused=False)):
        scores = judge.score_pairs([("a man is playing guitar", d) for d in docs])
        got = judge.rank("a man is playing guitar", docs, top_k=3)
        assert [r.index for r in got] == list(np.argsort(-scores, kind="stable")[:3])
        assert [r.rank for r in got] == [1, 2, 3] and got[0].text == docs[got[0].index]
        np.testing.assert_allclose([r.score for r in got], np.sort(scores)[::-1][:3], atol=1e-6)
        assert judge.rank("q", []) == []
        with pytest.raises(TypeError, match="query is int"):
            judge.rank(3, docs)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="item 1 is int"):
            judge.rank("q", ["a", 2])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="top_k must be ≥ 0"):
            judge.rank("q", docs, top_k=-1)
        for empty in ("", "  "):  # as the server's /rerank refuses it
            with pytest.raises(ValueError, match=r"query is empty \(.*\); pass the text"):
                judge.rank(empty, docs)


def test_load_judge_three_way(tiny_ce_dir: Path, tiny_st_dir: Path, tmp_path: Path) -> None:
    """A stored three-way fusion loads every bi-encoder it names and fuses their cosines."""
    judge_dir = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge_dir)
    term = ExtraTerm(str(tiny_st_dir), 0.5, 0.3, 0.5)
    config = replace(CONFIG, bi_encoder=str(tiny_st_dir), extra=(term,))
    write_fusion(judge_dir, config)
    ce = CrossEncoder.load(judge_dir, device="cpu").predict(PAIRS, symmetric=True)
    cos = EncoderPairScorer(BiEncoder.load(tiny_st_dir, device="cpu")).score_pairs(PAIRS)

    fused = load_judge(judge_dir)
    assert isinstance(fused, FusedScorer) and len(fused.extra) == 1
    assert f"fused with {tiny_st_dir} + {tiny_st_dir}" in fused.name
    np.testing.assert_allclose(fused.score_pairs(PAIRS), fuse(ce, cos, config, [cos]), atol=1e-6)
    two_way = fuse(ce, cos, replace(config, extra=()))
    assert not np.allclose(fused.score_pairs(PAIRS), two_way, atol=1e-4)


def test_load_judge_without_fusion_is_the_symmetric_cross_encoder(tiny_ce_dir: Path) -> None:
    judge = load_judge(tiny_ce_dir)
    assert isinstance(judge, CrossEncoderScorer) and judge.symmetric


def test_a_fused_bi_encoder_that_moved_is_named_with_its_config(
    tiny_ce_dir: Path, tiny_st_dir: Path, tmp_path: Path
) -> None:
    """The folder is stored relative to the judge; once gone, the error said the name was
    "neither a built-in name nor an existing directory (<working folder>/../bi)": a place the
    fusion never meant, and no word of the config that names it."""
    judge_dir = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge_dir)
    shutil.copytree(tiny_st_dir, tmp_path / "bi")
    write_fusion(judge_dir, replace(CONFIG, bi_encoder="../bi"))
    assert isinstance(load_judge(judge_dir), FusedScorer)
    shutil.rmtree(tmp_path / "bi")
    with pytest.raises(ModelLoadError) as info:
        load_judge(judge_dir)
    message = str(info.value)
    assert str(judge_dir / "sentsim_config.json") in message
    assert "'../bi'" in message and str(tmp_path / "bi") in message
    assert "fused=False" in message
    assert isinstance(load_judge(judge_dir, fused=False), CrossEncoderScorer)


def test_a_bi_encoder_inside_the_judge_named_like_a_built_in_stays_the_folder(
    tiny_st_dir: Path, tmp_path: Path
) -> None:
    """Stored as "bi-sts", a fine-tuned copy kept in the judge's folder under that name was read
    back as the shipped bi-sts: the judge fused with another model than the one chosen on dev."""
    judge_dir = tmp_path / "judge"
    inside = shutil.copytree(tiny_st_dir, judge_dir / "bi-sts")
    reference = model_reference(str(inside), judge_dir)
    assert reference == "./bi-sts"
    assert Path(stored_model_path(reference, judge_dir)).resolve() == inside.resolve()
    assert stored_model_path(model_reference("bi-sts", judge_dir), judge_dir) == "bi-sts"


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda f: {**f, "foo": 1}, r"unexpected keyword argument 'foo'"),
        (lambda f: {k: v for k, v in f.items() if k != "ce_std"}, r"missing .* 'ce_std'"),
        (lambda f: {**f, "weight": "x"}, r"weight 'x' is not a number"),
        (lambda f: {**f, "bi_encoder": None}, r"bi_encoder None is not a model name"),
        (lambda f: {**f, "ce_std": 0}, r"ce_std 0 must be above 0"),
        (lambda f: {**f, "symmetric": "no"}, r"symmetric 'no' must be true or false"),
        (lambda f: {**f, "selected_on": 3}, r"selected_on 3 is not a text"),
        (lambda f: {**f, "weight": 2.0}, r"weights must each be in 0\.\.1 and sum to at most 1"),
        (lambda f: [1], r"'fusion' must be an object"),
        (lambda f: {**f, "extra": [{"bi_encoder": "b"}]}, r"missing 3 required"),
        (lambda f: {**f, "extra": [{**EXTRA, "std": -1}]}, r"extra\[0\]\.std -1 must be above 0"),
    ],
)
def test_a_stored_fusion_that_is_not_one_is_named(tmp_path: Path, edit: Any, error: str) -> None:
    """Hand-edited or damaged, it failed with the dataclass's TypeError, numpy's UFuncTypeError
    or 'list' has no attribute 'get'; a weight of 2 or a standard deviation of 0 fused without
    a word (scores of exactly 1.0 from a division by zero)."""
    write_fusion(tmp_path, CONFIG)
    file = tmp_path / "sentsim_config.json"
    stored = json.loads(file.read_text())
    file.write_text(json.dumps({**stored, "fusion": edit(stored["fusion"])}))
    with pytest.raises(ModelLoadError, match=rf"sentsim_config\.json: (?s:.*){error}"):
        read_fusion(tmp_path)


def test_a_config_that_is_not_an_object_holds_no_fusion(tmp_path: Path) -> None:
    """'list' object has no attribute 'get' before."""
    (tmp_path / "sentsim_config.json").write_text("[1]")
    with pytest.raises(ModelLoadError, match=r"sentsim_config\.json must hold an object"):
        read_fusion(tmp_path)


def test_fused_bi_encoders_load_on_the_judges_device_and_precision(
    tiny_ce_dir: Path, tiny_st_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A judge loaded in bf16 (or on the CPU beside a GPU) fused with bi-encoders loaded at the
    default: float32 on the default device."""
    from sentsim.fusion import judge_scorer

    monkeypatch.delenv("SENTSIM_PRECISION", raising=False)
    judge_dir = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge_dir)
    term = ExtraTerm(str(tiny_st_dir), 0.25, 0.3, 0.5)
    write_fusion(judge_dir, replace(CONFIG, bi_encoder=str(tiny_st_dir), extra=(term,)))
    model = CrossEncoder.load(judge_dir, device="cpu", precision="bf16")
    fused = judge_scorer(model)
    assert isinstance(fused, FusedScorer)
    for scorer in (fused.bi, *fused.extra):
        assert isinstance(scorer.encoder, BiEncoder)
        assert scorer.encoder.precision == model.precision == "bf16"
        assert str(scorer.encoder.transformer.device) == str(model.device)
