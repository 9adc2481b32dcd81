"""Silver-label calibration: the Platt fit, its checks, and its place in an AugSBERT run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from sentsim.errors import DataError, SentsimError
from sentsim.training.augsbert import Sampling, run_augsbert
from sentsim.training.calibration import CalibratedScorer, Calibration, fit_calibration
from sentsim.training.silver import read_pair_list, read_silver
from test_augsbert import (  # noqa: F401  (data is a fixture)
    QUIET,
    config_for,
    data,
    stop_before_training,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def logit(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.log(x / (1 - x))


def sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1 / (1 + np.exp(-z))


def test_fit_recovers_the_map_that_made_the_gold_scores() -> None:
    rng = np.random.default_rng(0)
    judge = rng.uniform(0.1, 0.85, size=400)  # compressed, like a fused judge
    gold = sigmoid(1.6 * logit(judge) - 0.3)
    fitted = fit_calibration(judge, gold, dev="dev.csv")
    assert fitted.a == pytest.approx(1.6, abs=1e-4) and fitted.b == pytest.approx(-0.3, abs=1e-4)
    assert np.allclose(fitted.apply(judge), gold, atol=1e-5)
    assert fitted.pairs == 400 and fitted.dev == "dev.csv"
    assert fitted.calibrated_sd == pytest.approx(fitted.gold_sd, abs=1e-3)
    assert fitted.calibrated_sd > fitted.judge_sd


def test_noisy_gold_is_matched_in_mean_and_the_order_is_kept() -> None:
    rng = np.random.default_rng(1)
    gold = rng.uniform(0, 1, size=1000)
    judge = np.clip(0.5 + 0.25 * (gold - 0.5) + rng.normal(0, 0.03, size=1000), 0, 1)
    fitted = fit_calibration(judge, gold)
    out = fitted.apply(judge)
    assert abs(float(out.mean()) - float(gold.mean())) < 0.02
    assert out.std() > 2 * judge.std()  # spread back towards gold's
    order = np.argsort(judge, kind="stable")
    assert np.all(np.diff(out[order]) >= 0)  # monotone: the judge's order is kept
    assert fitted.apply([0.0, 1.0]).tolist() == pytest.approx([0.0, 1.0], abs=1e-3)


def test_fit_errors_name_the_dev_file() -> None:
    with pytest.raises(DataError, match=r"dev\.csv: calibration needs at least 2 pairs"):
        fit_calibration([0.4, 0.4, 0.4], [0.1, 0.5, 0.9], dev="dev.csv")
    with pytest.raises(DataError, match="calibration needs"):
        fit_calibration([0.4], [0.5])
    with pytest.raises(DataError, match=r"dev\.csv: the judge's scores fall as the gold scores"):
        fit_calibration([0.2, 0.4, 0.6, 0.8], [0.9, 0.7, 0.3, 0.1], dev="dev.csv")
    with pytest.raises(ValueError, match="must lie in 0–1"):
        fit_calibration([0.2, 1.5], [0.1, 0.9])
    with pytest.raises(ValueError, match="two equal 1-D arrays"):
        fit_calibration([0.2, 0.5, 0.7], [0.1, 0.9])


def test_save_read_round_trip_and_a_damaged_file(tmp_path: Path) -> None:
    fitted = fit_calibration([0.2, 0.4, 0.6, 0.7], [0.0, 0.4, 0.8, 1.0])
    fitted.save(tmp_path / "calibration.json")
    assert Calibration.read(tmp_path / "calibration.json") == fitted
    (tmp_path / "bad.json").write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json: not a calibration.*delete it to fit again"):
        Calibration.read(tmp_path / "bad.json")


class LinearJudge:
    name = "linear"

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        return np.array([0.3 + 0.1 * len(a) / max(len(b), 1) for a, b in pairs], np.float32)


def test_calibrated_scorer_maps_the_judges_scores() -> None:
    fitted = fit_calibration([0.2, 0.4, 0.6, 0.7], [0.0, 0.4, 0.8, 1.0], dev="d")
    scorer = CalibratedScorer(LinearJudge(), fitted)
    pairs = [("ab", "abcd"), ("abcd", "ab")]
    raw = LinearJudge().score_pairs(pairs)
    assert scorer.score_pairs(pairs).tolist() == pytest.approx(fitted.apply(raw).tolist())
    assert scorer.name == "linear, calibrated on d"


def test_augsbert_labels_silver_with_the_calibrated_judge(
    data: dict[str, Path],  # noqa: F811
    tiny_bert_dir: Path,
    tiny_ce_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sentsim.fusion
    from sentsim.baselines import OverlapPairScorer

    config = config_for(
        tmp_path / "out",
        tiny_bert_dir,
        unlabelled=data["target"],
        cross_encoder=tiny_ce_dir,
        strategies=(Sampling.BM25,),
        dev=data["dev"],
        calibrate=True,
    )
    stop_before_training(monkeypatch)  # only the silver file matters here
    # a judge that agrees with the dev scores (the tiny cross-encoder is random)
    monkeypatch.setattr(sentsim.fusion, "load_judge", lambda *a, **k: OverlapPairScorer())
    with pytest.raises(KeyboardInterrupt):
        run_augsbert(config, **QUIET)
    fitted = Calibration.read(config.out / "calibration.json")
    assert fitted.dev == str(data["dev"]) and fitted.pairs == 6
    pairs = read_pair_list(config.out / "silver-bm25-pairs.jsonl")
    expected = fitted.apply(OverlapPairScorer().score_pairs(pairs))
    silver = read_silver(config.out / "silver-bm25.jsonl")
    assert [p.target for p in silver] == pytest.approx(expected.tolist(), abs=1e-5)
    with pytest.raises(SentsimError, match=r"holds the judge's calibrated scores and this run"):
        run_augsbert(replace(config, calibrate=False), **QUIET)
    (config.out / "calibration.json").write_text(
        (config.out / "calibration.json").read_text().replace(str(data["dev"]), "other.csv")
    )
    with pytest.raises(SentsimError, match=r"was fitted on other\.csv, this run's --dev is"):
        run_augsbert(config, **QUIET)


def test_a_calibration_of_another_judge_or_dev_data_is_refused(
    data: dict[str, Path],  # noqa: F811
    tiny_bert_dir: Path,
    tiny_ce_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """calibration.json was reused whenever --dev named the same path: after the judge was
    trained again (or its folder changed), or the dev file was edited in place, the new judge's
    silver was mapped by a fit of the old judge's scores. The step records both hashes now."""
    import shutil

    from safetensors.torch import load_file, save_file

    import sentsim.fusion
    from sentsim.baselines import OverlapPairScorer

    judge, dev = tmp_path / "judge", tmp_path / "dev.csv"
    shutil.copytree(tiny_ce_dir, judge)
    shutil.copy(data["dev"], dev)
    config = config_for(
        tmp_path / "out",
        tiny_bert_dir,
        unlabelled=data["target"],
        cross_encoder=judge,
        strategies=(Sampling.BM25,),
        dev=dev,
        calibrate=True,
    )
    stop_before_training(monkeypatch)
    # a judge that agrees with the dev scores; its identity is still the folder's weights
    monkeypatch.setattr(sentsim.fusion, "load_judge", lambda *a, **k: OverlapPairScorer())
    with pytest.raises(KeyboardInterrupt):
        run_augsbert(config, **QUIET)
    weights = load_file(judge / "model.safetensors")
    save_file({k: v * 1.5 for k, v in weights.items()}, judge / "model.safetensors")
    (config.out / "silver-bm25.jsonl").unlink()
    with pytest.raises(SentsimError, match=r"calibration\.json was fitted to another judge's sc"):
        run_augsbert(config, **QUIET)
    shutil.copy(tiny_ce_dir / "model.safetensors", judge)  # the judge it was fitted to
    dev.write_text(dev.read_text().replace(",4.7", ",4.6"))
    with pytest.raises(SentsimError, match=r"calibration\.json was fitted on other dev pairs"):
        run_augsbert(config, **QUIET)


def test_calibration_needs_dev(tiny_bert_dir: Path, tiny_ce_dir: Path, tmp_path: Path) -> None:
    config = config_for(tmp_path / "o", tiny_bert_dir, cross_encoder=tiny_ce_dir, calibrate=True)
    with pytest.raises(ValueError, match=r"--calibrate-silver fits .* pass --dev"):
        run_augsbert(replace(config, gold=tmp_path / "missing.csv"), **QUIET)


def test_cli_flag_reaches_the_config(
    data: dict[str, Path],  # noqa: F811
    tiny_ce_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sentsim.training.augsbert
    from test_augsbert import run_cli

    seen: list[Any] = []

    def record(config: Any, **kwargs: Any) -> Any:
        seen.append(config)
        raise SentsimError("stopped before running")

    monkeypatch.setattr(sentsim.training.augsbert, "run_augsbert", record)
    argv = ["augsbert", "--gold", str(data["gold"]), "--cross-encoder", str(tiny_ce_dir)]
    argv += ["--sampling", "bm25", "--cap", "5", "--out", str(tmp_path / "o")]
    assert run_cli(monkeypatch, [*argv, "--calibrate-silver", "--dev", str(data["dev"])]) == 1
    assert run_cli(monkeypatch, argv) == 1
    assert [c.calibrate for c in seen] == [True, False]
