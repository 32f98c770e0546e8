"""Tests for custseg.model: stable segment ids, matching to a previous model, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from custseg.errors import InputError, ModelFormatError, NotFittedError
from custseg.model import FORMAT_VERSION, SegmentModel, load_model, save_model
from custseg.preprocess import Preprocessor

CENTERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
SIZES = (50, 30, 20)
BLOB_VALUE = (10.0, 100.0, 50.0)


def _blobs(seed: int = 0, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three separated blobs of 50, 30 and 20 points; returns X, blob index, value."""
    rng = np.random.default_rng(seed)
    blob = np.repeat(np.arange(3), SIZES)
    X = CENTERS[blob] + rng.normal(0.0, noise, size=(len(blob), 2))
    value = np.asarray(BLOB_VALUE)[blob] + rng.normal(0.0, 1.0, size=len(blob))
    return X, blob, value


def _id_of_blob(model: SegmentModel, blob: np.ndarray) -> dict[int, int]:
    out = {}
    for b in range(3):
        ids = np.unique(model.labels_[blob == b])
        assert len(ids) == 1, "a blob was split"
        out[b] = int(ids[0])
    return out


# ------------------------------------------------------------------------------------ ids


def test_ids_ordered_by_mean_value() -> None:
    X, blob, value = _blobs()
    m = SegmentModel(k=3, seed=0).fit(X, value=value)
    # blob 1 has the highest value (100) -> id 1, blob 2 (50) -> 2, blob 0 (10) -> 3
    assert _id_of_blob(m, blob) == {1: 1, 2: 2, 0: 3}
    assert m.segment_ids_.tolist() == [1, 2, 3]
    np.testing.assert_allclose(m.cluster_centers_, CENTERS[[1, 2, 0]], atol=0.3)


def test_ids_ordered_by_size_without_value() -> None:
    X, blob, _ = _blobs()
    m = SegmentModel(k=3, seed=0).fit(X)
    assert _id_of_blob(m, blob) == {0: 1, 1: 2, 2: 3}
    assert np.bincount(m.labels_).tolist() == [0, 50, 30, 20]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_ids_do_not_depend_on_seed(seed: int) -> None:
    X, blob, value = _blobs()
    m = SegmentModel(k=3, seed=seed, n_init=1).fit(X, value=value)
    assert _id_of_blob(m, blob) == {1: 1, 2: 2, 0: 3}


def test_relabelling_invariance_under_row_permutation() -> None:
    X, _, value = _blobs(noise=1.5)
    base = SegmentModel(k=3, seed=0).fit(X, value=value)
    perm = np.random.default_rng(3).permutation(len(X))
    other = SegmentModel(k=3, seed=0).fit(X[perm], value=value[perm])
    assert adjusted_rand_score(base.labels_[perm], other.labels_) == 1.0
    # ids are tied to value, not to the row order: the same customers get the same ids
    np.testing.assert_array_equal(base.labels_[perm], other.labels_)


def test_previous_keeps_ids_on_refit() -> None:
    X, blob, value = _blobs(seed=0)
    first = SegmentModel(k=3, seed=0).fit(X, value=value, feature_names=["a", "b"])
    X2, blob2, value2 = _blobs(seed=1)  # slightly different customers
    # values flipped so that value ordering alone would renumber every segment
    flipped = 200.0 - value2
    alone = SegmentModel(k=3, seed=5).fit(X2, value=flipped, feature_names=["a", "b"])
    assert _id_of_blob(alone, blob2) != _id_of_blob(first, blob)
    matched = SegmentModel(k=3, seed=5).fit(X2, value=flipped, feature_names=["a", "b"],
                                            previous=first)
    assert _id_of_blob(matched, blob2) == _id_of_blob(first, blob)
    assert matched.segment_ids_.tolist() == [1, 2, 3]
    assert adjusted_rand_score(alone.labels_, matched.labels_) == 1.0


def test_previous_with_more_segments_gives_new_ids() -> None:
    X, blob, value = _blobs()
    two = SegmentModel(k=2, seed=0).fit(X[blob != 2], value=value[blob != 2])
    three = SegmentModel(k=3, seed=0).fit(X, value=value, previous=two)
    ids = _id_of_blob(three, blob)
    assert ids[1] == _id_of_blob_two(two, blob[blob != 2], 1)
    assert ids[0] == _id_of_blob_two(two, blob[blob != 2], 0)
    assert ids[2] == 3  # the new segment gets the next free id


def _id_of_blob_two(model: SegmentModel, blob: np.ndarray, b: int) -> int:
    (only,) = np.unique(model.labels_[blob == b])
    return int(only)


def test_previous_with_different_features_raises() -> None:
    X, _, _ = _blobs()
    first = SegmentModel(k=3).fit(X, feature_names=["a", "b"])
    with pytest.raises(InputError, match="different features"):
        SegmentModel(k=3).fit(X, feature_names=["a", "c"], previous=first)


def test_fewer_rows_than_k() -> None:
    with pytest.raises(InputError, match="2 customers are fewer than k=3"):
        SegmentModel(k=3).fit(np.zeros((2, 2)))


def test_predict_and_transform() -> None:
    X, _, value = _blobs()
    m = SegmentModel(k=3, seed=0).fit(X, value=value)
    np.testing.assert_array_equal(m.predict(X), m.labels_)
    d = m.transform(np.array([[10.0, 0.0]]))
    assert d.shape == (1, 3)
    assert np.argmin(d[0]) == 0  # nearest to segment 1 (the high-value blob at (10, 0))
    np.testing.assert_allclose(d[0], np.linalg.norm(m.cluster_centers_ - [10.0, 0.0], axis=1))
    with pytest.raises(InputError, match="expected 2 feature columns, got 3"):
        m.predict(np.zeros((1, 3)))


def test_transform_before_fit() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        SegmentModel(k=3).transform(np.zeros((1, 2)))


def test_predict_before_fit() -> None:
    with pytest.raises(NotFittedError):
        SegmentModel(k=3).predict(np.zeros((1, 2)))


# ------------------------------------------------------------------------------------ save/load


@pytest.fixture
def fitted(tmp_path: Path):
    X, _, value = _blobs(noise=1.0)
    frame = pd.DataFrame({"recency": X[:, 0] + 20.0, "spend": np.exp(X[:, 1] / 3.0),
                          "region": np.where(X[:, 0] > 5, "north", "south")})
    pre = Preprocessor(numeric=["recency", "spend"], categorical=["region"]).fit(frame)
    Xt = pre.transform(frame)
    model = SegmentModel(k=3, seed=0).fit(Xt, value=value, feature_names=pre.feature_names_out_)
    path = save_model(tmp_path / "model", model, pre,
                      {"segments": [{"segment_id": i, "name": f"S{i}"} for i in (1, 2, 3)],
                       "training": {"rows": 100}})
    return path, model, pre, frame


def test_save_load_predict_identical(fitted) -> None:
    path, model, _, frame = fitted
    loaded, pre, manifest = load_model(path)
    np.testing.assert_array_equal(loaded.predict(pre.transform(frame)), model.labels_)
    np.testing.assert_array_equal(loaded.cluster_centers_, model.cluster_centers_)
    np.testing.assert_array_equal(loaded.segment_ids_, model.segment_ids_)
    assert loaded.feature_names_in_ == model.feature_names_in_
    assert manifest["format_version"] == FORMAT_VERSION
    assert [s["name"] for s in manifest["segments"]] == ["S1", "S2", "S3"]
    assert manifest["training"] == {"rows": 100}


def test_saved_folder_has_no_pickle(fitted) -> None:
    path, model, _, _ = fitted
    files = sorted(p.name for p in path.iterdir())
    assert files == ["centroids.npy", "manifest.json"]
    assert not [p for p in path.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
    arr = np.load(path / "centroids.npy", allow_pickle=False)
    assert arr.dtype == np.float64
    np.testing.assert_array_equal(arr, model.cluster_centers_)
    json.loads((path / "manifest.json").read_text(encoding="utf-8"))


def test_tampered_array(fitted) -> None:
    path, model, _, _ = fitted
    from custseg.io.writers import write_npy

    write_npy(path / "centroids.npy", model.cluster_centers_ + 1e-9)
    with pytest.raises(ModelFormatError, match="checksum mismatch"):
        load_model(path)


def test_truncated_array(fitted) -> None:
    path = fitted[0]
    data = (path / "centroids.npy").read_bytes()
    (path / "centroids.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="centroids.npy"):
        load_model(path)


def test_missing_array(fitted) -> None:
    path = fitted[0]
    (path / "centroids.npy").unlink()
    with pytest.raises(ModelFormatError, match="array file missing"):
        load_model(path)


def test_missing_manifest(fitted) -> None:
    path = fitted[0]
    (path / "manifest.json").unlink()
    with pytest.raises(ModelFormatError, match="no manifest.json"):
        load_model(path)
    with pytest.raises(ModelFormatError, match="no manifest.json"):
        load_model(path.parent / "does-not-exist")


def _edit_manifest(path: Path, edit, resign: bool = True) -> None:
    """Edit the manifest; ``resign`` recomputes its digest (a deliberate edit that passes the
    integrity check, to reach the structural checks behind it)."""
    from custseg.model import DIGEST_KEY, manifest_digest

    mpath = path / "manifest.json"
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    edit(manifest)
    if resign:
        manifest[DIGEST_KEY] = manifest_digest(manifest)
    mpath.write_text(json.dumps(manifest), encoding="utf-8")


def test_unknown_format_version(fitted) -> None:
    path = fitted[0]
    _edit_manifest(path, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelFormatError,
                       match=f"format version {FORMAT_VERSION + 1} is not supported"):
        load_model(path)


def test_garbage_manifest(fitted) -> None:
    path = fitted[0]
    (path / "manifest.json").write_text("{not json at all", encoding="utf-8")
    with pytest.raises(ModelFormatError, match="unreadable manifest"):
        load_model(path)
    (path / "manifest.json").write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(ModelFormatError, match="not a custseg model manifest"):
        load_model(path)
    (path / "manifest.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelFormatError):
        load_model(path)


def test_incomplete_manifest(fitted) -> None:
    path = fitted[0]
    _edit_manifest(path, lambda m: m.pop("model"))
    with pytest.raises(ModelFormatError, match="incomplete or invalid manifest"):
        load_model(path)


def test_manifest_shape_mismatch(fitted) -> None:
    path = fitted[0]
    _edit_manifest(path, lambda m: m["model"].update(k=4))
    with pytest.raises(ModelFormatError, match="does not match k=4"):
        load_model(path)


def test_save_unfitted_model(tmp_path: Path) -> None:
    pre = Preprocessor(numeric=["x"]).fit(pd.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(NotFittedError):
        save_model(tmp_path / "m", SegmentModel(k=2), pre, {})


def _scale_mean(m: dict) -> None:
    m["preprocessing"]["columns"][0]["mean"] *= 1000


def _drop_segment(m: dict) -> None:
    m["segments"].pop()


def _nan_mean(m: dict) -> None:
    m["preprocessing"]["columns"][1]["mean"] = None  # NaN is written as null


@pytest.mark.parametrize("edit", [_scale_mean, _drop_segment, _nan_mean])
def test_edited_manifest_does_not_load(fitted, edit) -> None:
    """Hand-edited manifest values (a scaler mean x1000, a dropped segment, a NaN) used to load
    without a word: the manifest's own digest catches any edit."""
    path = fitted[0]
    load_model(path)
    _edit_manifest(path, edit, resign=False)
    with pytest.raises(ModelFormatError, match="manifest was changed after the model was saved"):
        load_model(path)


@pytest.mark.parametrize(("edit", "needle"), [
    (_drop_segment, "do not match the model's segment ids"),
    (_nan_mean, "invalid mean"),
    (lambda m: m["model"].update(segment_ids=[1, 1, 2]), "3 segment ids for k=3"),
])
def test_inconsistent_manifest_does_not_load_even_with_a_valid_digest(fitted, edit,
                                                                      needle) -> None:
    _edit_manifest(fitted[0], edit)
    with pytest.raises(ModelFormatError, match=needle):
        load_model(fitted[0])


def test_nan_centroid_does_not_load(fitted) -> None:
    from custseg.io.writers import write_npy
    from custseg.model import _sha256

    path, model = fitted[0], fitted[1]
    bad = model.cluster_centers_.copy()
    bad[1, 0] = np.nan
    write_npy(path / "centroids.npy", bad)
    with pytest.raises(ModelFormatError, match="checksum mismatch"):
        load_model(path)
    _edit_manifest(path, lambda m: m["arrays"].update({"centroids.npy": _sha256(
        path / "centroids.npy")}))
    with pytest.raises(ModelFormatError, match="not a finite number"):
        load_model(path)


def test_older_format_version_says_how_to_fix(fitted) -> None:
    _edit_manifest(fitted[0], lambda m: m.update(format_version=1))
    with pytest.raises(ModelFormatError, match="saved by an older custseg"):
        load_model(fitted[0])
