"""Input sizes for export: ``--imgsz 640`` or ``--imgsz 640x384``, pinned into a dynamic ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import pytest

from edged.errors import InputError, ModelError
from edged.tools.export import InputSize, _pin_input


@pytest.mark.parametrize(("text", "size"), [("640", (640, 640)), ("640x384", (640, 384)), ("320X256", (320, 256))])
def test_sizes_parse_as_width_by_height(text: str, size: tuple[int, int]) -> None:
    parsed = InputSize.parse(text)
    assert (parsed.width, parsed.height) == size
    assert InputSize.parse(str(parsed)) == parsed


@pytest.mark.parametrize(("text", "why"), [
    ("640x", "expected a size like 640"), ("big", "expected a size like 640"), ("1x2x3", "expected a size"),
    ("640x360", "multiple of 32"), ("0", "multiple of 32"), ("8192", "between 32 and 4096"),
])
def test_bad_sizes_are_named(text: str, why: str) -> None:
    with pytest.raises(InputError, match=why) as caught:
        InputSize.parse(text)
    assert repr(text) in str(caught.value)


def _conv_model(path: Path, height: int | str, width: int | str) -> Path:
    weight = onnx.numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    graph = oh.make_graph(
        [oh.make_node("Conv", ["images", "w"], ["out"])], "g",
        [oh.make_tensor_value_info("images", onnx.TensorProto.FLOAT, ["batch", 3, height, width])],
        [oh.make_tensor_value_info("out", onnx.TensorProto.FLOAT, ["batch", 4, height, width])], [weight])
    onnx.save(oh.make_model(graph), str(path))
    return path


def test_a_dynamic_input_is_pinned_to_height_and_width(tmp_path: Path) -> None:
    path = _conv_model(tmp_path / "m.onnx", "h", "w")
    assert _pin_input(path, InputSize(640, 384)) == (384, 640, None)
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[2:]] == [384, 640]


def test_a_dynamic_input_needs_a_size(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not fixed; give --imgsz"):
        _pin_input(_conv_model(tmp_path / "m.onnx", "h", "w"), None)


def test_a_fixed_input_that_differs_is_refused_in_width_by_height(tmp_path: Path) -> None:
    path = _conv_model(tmp_path / "m.onnx", 384, 640)
    assert _pin_input(path, None) == (384, 640, None)
    with pytest.raises(ModelError, match=r"fixed at 640x384 \(width x height\), not --imgsz 384x640"):
        _pin_input(path, InputSize(384, 640))


@pytest.mark.parametrize(("shape", "count"), [([1, 300, 6], 80), ([1, 300, 84], 80), ([1, 2535, 85], 80),
                                               ([1, 84, 8400], 80), ([1, 2535, 8], 3), ([1, 7, 8400], 3)])
def test_a_head_with_no_names_counts_its_labels_for_every_layout_that_shape_can_be(shape: list[int],
                                                                                    count: int) -> None:
    """A DETR's [N, K, 4 + 80] is COCO's 80, not 79 (the raw YOLOv5 reading of the same shape)."""
    from edged.models.heads.layout import unnamed_count

    assert unnamed_count(shape) == count


def test_a_tensor_name_with_control_characters_reaches_the_terminal_escaped(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The refusal names every input and output as the file names them: an escape sequence in one is shown, not
    obeyed."""
    from edged.cli import main

    model = oh.make_model(oh.make_graph(
        [oh.make_node("Identity", ["images"], ["out\x1b[2Jput"]), oh.make_node("Identity", ["images"], ["second"])],
        "g", [oh.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, 32, 32])],
        [oh.make_tensor_value_info("out\x1b[2Jput", onnx.TensorProto.FLOAT, [1, 3, 32, 32]),
         oh.make_tensor_value_info("second", onnx.TensorProto.FLOAT, [1, 3, 32, 32])]))
    source = tmp_path / "two.onnx"
    onnx.save(model, str(source))
    assert main(["export", str(source), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "out\\x1b[2Jput" in err, err
