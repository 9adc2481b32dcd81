"""Inference precision: fp32 by default, bf16 under autocast on request, auto by the hardware."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from sentsim import backend
from sentsim.backend import Precision, default_precision, native_bf16, resolve_precision
from sentsim.bi_encoder import BiEncoder
from sentsim.cli import main
from sentsim.cross_encoder import CrossEncoder
from sentsim.errors import ModelLoadError

TEXTS = ["my card was declined abroad", "how do i top up", "a dog plays on the beach", "fee"]


def test_default_is_fp32_and_the_environment_can_change_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert default_precision() == Precision.FP32
    monkeypatch.setenv("SENTSIM_PRECISION", " BF16 ")
    assert default_precision() == Precision.BF16
    monkeypatch.setenv("SENTSIM_PRECISION", "half")
    with pytest.raises(ModelLoadError, match="SENTSIM_PRECISION='half' is not a precision"):
        default_precision()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [({"avx2", "amx_bf16"}, "bf16"), ({"avx512f", "avx512_bf16"}, "bf16"), ({"avx2"}, "fp32")],
)
def test_auto_takes_bf16_only_where_the_cpu_multiplies_it(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], expected: str
) -> None:
    monkeypatch.setattr("sentsim.machine.cpu_flags", lambda: flags)
    assert native_bf16("cpu") == (expected == "bf16")
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("fp32", "cpu") == Precision.FP32  # an explicit choice stands
    assert resolve_precision("bf16", "cpu") == Precision.BF16
    with pytest.raises(ValueError, match="precision 'fp8': use fp32, bf16 or auto"):
        resolve_precision("fp8", "cpu")


def test_bi_encoder_bf16_is_close_to_fp32_but_not_the_same(tiny_st_dir: Path) -> None:
    """bf16 really runs (the vectors move) and stays near fp32 (cosine ≥ 0.99 per text)."""
    full = BiEncoder.load(tiny_st_dir)
    assert full.precision == Precision.FP32
    half = BiEncoder.load(tiny_st_dir, precision="bf16")
    a, b = full.encode(TEXTS), half.encode(TEXTS)
    assert a.dtype == b.dtype == np.float32
    assert not np.array_equal(a, b)
    assert np.min(np.sum(a * b, axis=1)) > 0.99
    half.precision = "fp32"  # the setter resolves and switches back
    np.testing.assert_array_equal(half.encode(TEXTS), a)


def test_cross_encoder_bf16_is_close_to_fp32_but_not_the_same(tiny_ce_dir: Path) -> None:
    pairs = [(TEXTS[0], TEXTS[1]), (TEXTS[2], TEXTS[3]), (TEXTS[0], TEXTS[0])]
    full = CrossEncoder.load(tiny_ce_dir)
    half = CrossEncoder.load(tiny_ce_dir, precision="bf16")
    a, b = full.predict(pairs), half.predict(pairs)
    assert half.precision == Precision.BF16 and b.dtype == np.float32
    assert not np.array_equal(a, b)
    np.testing.assert_allclose(a, b, atol=0.05)


def test_cli_precision_reaches_the_models_and_is_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    data = tmp_path / "pairs.csv"
    data.write_text("sentence1,sentence2,score\n" + "".join(f"{a},{b},{i}\n" for i, (a, b) in
                    enumerate(zip(TEXTS, TEXTS[1:] + TEXTS[:1], strict=True))))  # fmt: skip
    argv = ["eval", "sts", "--data", str(data), "--model", str(tiny_st_dir), "--json"]
    assert main(["--precision", "bf16", *argv]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["compute_precision"] == "bf16"
    assert "SENTSIM_PRECISION" not in os.environ  # put back as it was after the command
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["compute_precision"] == "fp32"


def test_inference_context_per_precision() -> None:
    import torch

    with backend.inference(Precision.FP32, "cpu"):
        assert torch.is_inference_mode_enabled() and not torch.is_autocast_enabled("cpu")
    with backend.inference(Precision.BF16, "cpu"):
        assert not torch.is_grad_enabled() and torch.is_autocast_enabled("cpu")
    assert torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu")
