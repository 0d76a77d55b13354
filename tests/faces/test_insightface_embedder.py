"""InsightFaceEmbedder through the real insightface and onnxruntime (the
``faces`` extra; skipped without it), on a model pack written here: no face
weights can be downloaded, so the pack's two ONNX files are made of
constants — an SCRFD-shaped detector (9 outputs: scores, boxes, landmarks at
strides 8, 16, 32) that finds one face at a known place, and an
ArcFace-shaped recogniser (112 × 112 → 512) that is one random matrix."""

import numpy as np
import pytest
from PIL import Image

pytest.importorskip('insightface')
onnx = pytest.importorskip('onnx')

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from diffengine_ipa.faces import build_face_embedder  # noqa: E402

SIZE = 640  # the detector's static input
CENTER = (320.0, 320.0)  # the anchor at stride 32, cell (10, 10)
# landmarks about the face's centre: eyes, nose, mouth corners
KPS = np.array([[-35, -40], [35, -40], [0, 0], [-30, 40], [30, 40]], np.float32)
HALF = 100.0  # the box: 100 px each way


def _graph_file(path, nodes, inputs, outputs, initializers) -> None:
    graph = helper.make_graph(nodes, 'fake', inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def write_detector(path) -> None:
    """Outputs that do not depend on the image: one anchor scores 0.9."""
    nodes, outputs, initializers = [], [], []
    zero = helper.make_node('ReduceMean', ['input.1'], ['mean'], keepdims=0)
    nodes += [zero, helper.make_node('Mul', ['mean', 'nought'], ['zero'])]
    initializers.append(numpy_helper.from_array(np.zeros((), np.float32), 'nought'))
    levels = {}
    for stride in (8, 16, 32):
        cells = (SIZE // stride) ** 2 * 2  # two anchors a cell
        score = np.zeros((1, cells, 1), np.float32)
        box = np.zeros((1, cells, 4), np.float32)
        kps = np.zeros((1, cells, 10), np.float32)
        if stride == 32:
            index = (10 * (SIZE // 32) + 10) * 2
            score[0, index] = 0.9
            box[0, index] = HALF / stride
            kps[0, index] = KPS.reshape(-1) / stride
        levels[stride] = dict(score=score, bbox=box, kps=kps)
    for kind in ('score', 'bbox', 'kps'):
        for stride, arrays in levels.items():
            name = f'{kind}_{stride}'
            initializers.append(numpy_helper.from_array(arrays[kind], name + '_c'))
            nodes.append(helper.make_node('Add', [name + '_c', 'zero'], [name]))
            outputs.append(
                helper.make_tensor_value_info(
                    name, TensorProto.FLOAT, list(arrays[kind].shape)
                )
            )
    image = helper.make_tensor_value_info(
        'input.1', TensorProto.FLOAT, [1, 3, SIZE, SIZE]
    )
    _graph_file(path, nodes, [image], outputs, initializers)


def write_recogniser(path, seed: int = 0) -> np.ndarray:
    weight = np.random.default_rng(seed).standard_normal((3 * 112 * 112, 512))
    weight = weight.astype(np.float32)
    nodes = [
        helper.make_node('Flatten', ['input.1'], ['flat']),
        helper.make_node('MatMul', ['flat', 'weight'], ['683']),
    ]
    image = helper.make_tensor_value_info(
        'input.1', TensorProto.FLOAT, [1, 3, 112, 112]
    )
    out = helper.make_tensor_value_info('683', TensorProto.FLOAT, [1, 512])
    _graph_file(
        path, nodes, [image], [out], [numpy_helper.from_array(weight, 'weight')]
    )
    return weight


def test_insightface_finds_aligns_and_embeds_through_the_embedder(tmp_path):
    import cv2
    from insightface.utils import face_align

    pack = tmp_path / 'models' / 'fake_pack'
    pack.mkdir(parents=True)
    write_detector(pack / 'det_10g.onnx')
    weight = write_recogniser(pack / 'w600k_r50.onnx')
    embedder = build_face_embedder(
        dict(type='InsightFaceEmbedder', name='fake_pack', root=str(tmp_path))
    )
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    (face,) = embedder.faces(Image.fromarray(rgb))
    assert face.bbox == pytest.approx(
        (CENTER[0] - HALF, CENTER[1] - HALF, CENTER[0] + HALF, CENTER[1] + HALF)
    )
    assert face.score == pytest.approx(0.9)
    # The crop is insightface's norm_crop of the BGR image, back in RGB.
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    landmarks = KPS + np.array(CENTER, np.float32)
    crop = face_align.norm_crop(bgr, landmark=landmarks, image_size=224)
    assert face.crop.size == (224, 224)
    assert np.array_equal(np.asarray(face.crop), crop[:, :, ::-1])
    # The weightless embedder aligns as norm_crop does (its own Umeyama).
    from diffengine_ipa.faces import align_face

    assert np.abs(align_face(bgr, landmarks).astype(int) - crop).max() <= 1
    # The embedding: ArcFace's input (the 112 crop, RGB, (x - 127.5) / 127.5)
    # through the matrix, unit length.
    small = face_align.norm_crop(bgr, landmark=landmarks, image_size=112)
    blob = cv2.dnn.blobFromImage(small, 1 / 127.5, (112, 112), (127.5,) * 3, True)
    expected = blob.reshape(-1) @ weight
    expected /= np.linalg.norm(expected)
    assert face.embedding.shape == (512,) and face.embedding.dtype == np.float32
    assert face.embedding == pytest.approx(expected, abs=1e-4)

    # A pack folder without model files: one line naming the folder.
    from diffengine_ipa.errors import ModelSourceError

    with pytest.raises(ModelSourceError, match='no insightface model files'):
        build_face_embedder(dict(type='InsightFaceEmbedder', root=str(tmp_path / 'x')))
