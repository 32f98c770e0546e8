"""SegmentModel: K-Means with deterministic segment ids, saved without pickle.

Segment identity never depends on K-Means' arbitrary numbering. Segments are numbered 1..k in
decreasing order of mean customer value (net spend when the data has it, else size), with ties
broken by size and then by centroid coordinates. When a previous model is given, centroids are
matched to it with the Hungarian algorithm so the same segment keeps its id.

A saved model is a folder: ``manifest.json`` (format version, versions, feature schema,
preprocessing parameters, segments with names, evidence and recommendations, training summary,
sha256 of each array file, and ``content_sha256``: a SHA-256 of the manifest's own canonical
content, which covers the array hashes too) and ``centroids.npy``. Loading checks all of it --
the digest, the shapes, that every number is finite and that the segments match the model --
and raises :class:`~custseg.errors.ModelFormatError` on any mismatch, so a hand-edited manifest
(a scaler mean x1000, a segment removed, a centroid set to NaN) never loads silently. The digest
guards against accidents and edits, not against someone who recomputes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans

from custseg._version import __version__
from custseg.errors import InputError, ModelFormatError, NotFittedError
from custseg.io.writers import write_json, write_npy
from custseg.preprocess import Preprocessor

FORMAT = "custseg-model"
FORMAT_VERSION = 2  # 2: the manifest carries content_sha256 (version 1 had none)
DIGEST_KEY = "content_sha256"


class SegmentModel:
    """K-Means segmentation with stable, value-ordered segment ids.

    Parameters
    ----------
    k : int
        Number of segments.
    seed : int
        Random seed for K-Means.
    n_init : int
        K-Means restarts; the best (lowest inertia) is kept.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[np.zeros((20, 2)), np.ones((10, 2)) * 5]
    >>> m = SegmentModel(k=2, seed=0).fit(X)
    >>> sorted(np.bincount(m.labels_)[1:].tolist())
    [10, 20]
    """

    def __init__(self, *, k: int, seed: int = 0, n_init: int = 10, max_iter: int = 300) -> None:
        self.k = k
        self.seed = seed
        self.n_init = n_init
        self.max_iter = max_iter

    def fit(self, X: np.ndarray, *, value: np.ndarray | None = None,
            feature_names: list[str] | None = None,
            previous: SegmentModel | None = None,
            previous_space: np.ndarray | None = None,
            init: np.ndarray | None = None) -> SegmentModel:
        """Fit K-Means and number the segments deterministically.

        Parameters
        ----------
        value : array of shape (n,), optional
            Per-customer value used to order segments (e.g. net spend).
        previous : SegmentModel, optional
            An earlier model: segments whose centroids match one of its centroids keep that id
            (Hungarian matching on squared distance); unmatched segments get new ids.
        previous_space : array of shape (n, p_previous), optional
            The same customers in the previous model's feature space (transformed with its
            preprocessor), when it differs from ``X``: new centroids are computed there.
        init : array of shape (k, p), optional
            Starting centroids (e.g. the best fit on a sample): one Lloyd run from them replaces
            the ``n_init`` random starts.
        """
        X = np.asarray(X, dtype="float64")
        if X.ndim != 2 or X.shape[0] < self.k:
            raise InputError(f"{X.shape[0]} customers are fewer than k={self.k} segments")
        if init is not None:
            # one Lloyd run over everyone from good starting centroids: each pass streams the
            # whole matrix, so it runs in float32 (half the bytes: ~3x faster at 1M x 16) ...
            km = KMeans(n_clusters=self.k, init=np.asarray(init, dtype="float32"), n_init=1,
                        max_iter=self.max_iter, random_state=self.seed).fit(X.astype("float32"))
            centers = km.cluster_centers_.astype("float64")
        else:
            km = KMeans(n_clusters=self.k, n_init=self.n_init, max_iter=self.max_iter,
                        random_state=self.seed).fit(X)
            centers = km.cluster_centers_
        self.init_ = "sample" if init is not None else "k-means++"
        self.__dict__.pop("distance_", None)
        self._numbered(km.labels_, centers, value=value, feature_names=feature_names,
                       previous=previous, previous_space=previous_space)
        self.n_iter_ = int(km.n_iter_)
        if init is None:
            self.inertia_ = float(km.inertia_)
            return self
        # ... and each customer then goes to its nearest centroid in float64: exactly the
        # segment predict() gives for the same row, so scoring the training data reproduces it
        d = self.transform(X)
        nearest = np.argmin(d, axis=1)
        self.labels_ = self.segment_ids_[nearest]
        self.distance_ = d[np.arange(len(d)), nearest]
        self.inertia_ = float(np.sum(self.distance_ ** 2))
        return self

    @classmethod
    def from_centers(cls, centers: np.ndarray, raw_labels: np.ndarray, *, seed: int = 0,
                     n_init: int = 10, value: np.ndarray | None = None,
                     feature_names: list[str] | None = None, inertia: float = float("nan"),
                     n_iter: int = 0, init: str = "external") -> SegmentModel:
        """A fitted model from centroids fitted elsewhere (e.g. on Spark) and the customers'
        labels against them, with segment ids numbered exactly as :meth:`fit` numbers them."""
        centers = np.asarray(centers, dtype="float64")
        model = cls(k=len(centers), seed=seed, n_init=n_init)
        model._numbered(np.asarray(raw_labels, dtype="int64"), centers, value=value,
                        feature_names=feature_names)
        model.inertia_ = float(inertia)
        model.n_iter_ = int(n_iter)
        model.init_ = init
        return model

    def _numbered(self, raw_labels: np.ndarray, centers: np.ndarray, *,
                  value: np.ndarray | None, feature_names: list[str] | None,
                  previous: SegmentModel | None = None,
                  previous_space: np.ndarray | None = None) -> None:
        """Number the segments (by mean value, then size, then centroid coordinates; or by
        matching a previous model) and store centroids and labels in that order."""
        sizes = np.bincount(raw_labels, minlength=self.k)
        if value is not None:
            v = np.asarray(value, dtype="float64")
            mean_value = np.array([np.nanmean(v[raw_labels == j]) if sizes[j] else -np.inf
                                   for j in range(self.k)])
        else:
            mean_value = sizes.astype("float64")
        keys = [(-round(float(mean_value[j]), 9), -int(sizes[j]), tuple(np.round(centers[j], 9)))
                for j in range(self.k)]
        order = sorted(range(self.k), key=lambda j: keys[j])
        ids = np.empty(self.k, dtype="int64")
        ids[order] = np.arange(1, self.k + 1)
        if previous is not None:
            if previous_space is None:
                self._check_same_features(previous, feature_names)
                space_centers = centers
            else:
                space = np.asarray(previous_space, dtype="float64")
                space_centers = np.vstack([space[raw_labels == j].mean(axis=0)
                                           for j in range(self.k)])
            ids = self._match(previous, space_centers)
        perm = np.argsort(ids)
        self.segment_ids_ = ids[perm]
        self.cluster_centers_ = centers[perm]
        remap = np.empty(self.k, dtype="int64")
        remap[perm] = np.arange(self.k)
        self.labels_ = self.segment_ids_[remap[raw_labels]]
        self.feature_names_in_ = list(feature_names) if feature_names is not None else None

    @staticmethod
    def _check_same_features(previous: SegmentModel, feature_names: list[str] | None) -> None:
        previous._check_fitted()
        if feature_names is not None and previous.feature_names_in_ is not None \
                and list(feature_names) != list(previous.feature_names_in_):
            raise InputError("the previous model was fitted on different features; pass the "
                             "customers in its feature space (previous_space) to match segments")

    def _match(self, previous: SegmentModel, centers: np.ndarray) -> np.ndarray:
        previous._check_fitted()
        if centers.shape[1] != previous.cluster_centers_.shape[1]:
            raise InputError("the previous model has a different number of features")
        d = ((centers[:, None, :] - previous.cluster_centers_[None, :, :]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(d)
        ids = np.zeros(self.k, dtype="int64")
        ids[rows] = previous.segment_ids_[cols]
        nxt = int(previous.segment_ids_.max()) + 1
        for j in range(self.k):
            if ids[j] == 0:
                ids[j] = nxt
                nxt += 1
        return ids

    def _check_fitted(self) -> None:
        if not hasattr(self, "cluster_centers_"):
            raise NotFittedError("SegmentModel is not fitted; call fit() first")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Euclidean distance of each row to each centroid (columns in segment-id order)."""
        self._check_fitted()
        X = np.asarray(X, dtype="float64")
        if X.shape[1] != self.cluster_centers_.shape[1]:
            raise InputError(f"expected {self.cluster_centers_.shape[1]} feature columns, "
                             f"got {X.shape[1]}")
        d2 = (np.einsum("ij,ij->i", X, X)[:, None] - 2 * X @ self.cluster_centers_.T
              + np.einsum("ij,ij->i", self.cluster_centers_, self.cluster_centers_)[None, :])
        return np.sqrt(np.maximum(d2, 0.0))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Segment id of the nearest centroid for each row."""
        self._check_fitted()
        return self.segment_ids_[np.argmin(self.transform(X), axis=1)]


# ------------------------------------------------------------------------------------ save/load


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest's content without its own digest: canonical JSON (sorted keys,
    no whitespace, non-finite numbers as null, as the written file holds them)."""
    from custseg.io.writers import to_json

    content = json.loads(to_json({k: v for k, v in manifest.items() if k != DIGEST_KEY}))
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _all_finite(obj: Any) -> bool:
    """Whether every number in a JSON-like value is finite (and none was written as null)."""
    if isinstance(obj, dict):
        return all(_all_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_all_finite(v) for v in obj)
    if isinstance(obj, float):
        return bool(np.isfinite(obj))
    return True


def save_model(path: str | Path, model: SegmentModel, preprocessor: Preprocessor,
               extra: dict[str, Any]) -> Path:
    """Write ``manifest.json`` and ``centroids.npy`` into the folder ``path``.

    ``extra`` carries the feature schema, segments (names, evidence, recommendations) and the
    training summary; it must be JSON-serialisable.
    """
    model._check_fitted()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arrays = {"centroids.npy": model.cluster_centers_.astype("float64")}
    hashes = {}
    for name, arr in arrays.items():
        write_npy(path / name, arr)
        hashes[name] = _sha256(path / name)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "custseg_version": __version__,
        "model": {"k": model.k, "seed": model.seed, "n_init": model.n_init,
                  "segment_ids": model.segment_ids_.tolist(), "inertia": model.inertia_,
                  "feature_names": model.feature_names_in_},
        "preprocessing": preprocessor.to_dict(),
        **extra,
        "arrays": hashes,
    }
    manifest[DIGEST_KEY] = manifest_digest(manifest)
    write_json(path / "manifest.json", manifest)
    return path


def load_model(path: str | Path) -> tuple[SegmentModel, Preprocessor, dict[str, Any]]:
    """Load a saved model folder; checks format, version and the hash of every array file.

    Raises
    ------
    ModelFormatError
        Missing or unreadable manifest, unknown format version, tampered or truncated arrays.
    """
    path = Path(path)
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise ModelFormatError(f"{path}: not a custseg model folder (no manifest.json)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{mpath}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFormatError(f"{mpath}: not a custseg model manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        hint = ("; it was saved by an older custseg: run `custseg segment` again to save it in "
                "the current format") if version == 1 else ""
        raise ModelFormatError(f"{mpath}: model format version {version!r} is not supported "
                               f"(this custseg reads version {FORMAT_VERSION}){hint}")
    if manifest.get(DIGEST_KEY) != manifest_digest(manifest):
        raise ModelFormatError(f"{mpath}: the manifest was changed after the model was saved "
                               f"(its {DIGEST_KEY} does not match its content); refusing a "
                               "model whose parameters may have been edited: save it again")
    try:
        hashes = manifest["arrays"]
        arrays = {}
        for name, digest in hashes.items():
            apath = path / name
            if not apath.is_file():
                raise ModelFormatError(f"{apath}: array file missing")
            if _sha256(apath) != digest:
                raise ModelFormatError(f"{apath}: checksum mismatch (file changed or truncated)")
            arrays[name] = np.load(apath, allow_pickle=False)
        m = manifest["model"]
        model = SegmentModel(k=int(m["k"]), seed=int(m["seed"]), n_init=int(m["n_init"]))
        model.cluster_centers_ = np.asarray(arrays["centroids.npy"], dtype="float64")
        model.segment_ids_ = np.asarray(m["segment_ids"], dtype="int64")
        model.inertia_ = float(m["inertia"])
        model.feature_names_in_ = m.get("feature_names")
        model.labels_ = np.empty(0, dtype="int64")
        pre = Preprocessor.from_dict(manifest["preprocessing"])
    except ModelFormatError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{mpath}: incomplete or invalid manifest ({exc!r})") from None
    _check_consistent(mpath, manifest, model, pre)
    return model, pre, manifest


def _check_consistent(mpath: Path, manifest: dict[str, Any], model: SegmentModel,
                      pre: Preprocessor) -> None:
    """Shapes, finite numbers and segments that agree with the model."""
    path = mpath.parent
    if model.cluster_centers_.shape != (model.k, len(pre.feature_names_out_)):
        raise ModelFormatError(f"{path}: centroids shape {model.cluster_centers_.shape} does not "
                               f"match k={model.k} and {len(pre.feature_names_out_)} features")
    if not np.isfinite(model.cluster_centers_).all():
        raise ModelFormatError(f"{path}: centroids hold a value that is not a finite number")
    for spec in pre.specs_:
        nums = {"mean": spec.mean, "scale": spec.scale, "weight": spec.weight}
        if spec.kind == "numeric":
            nums.update(lo=spec.lo, hi=spec.hi)
        bad = [k for k, v in nums.items()
               if not isinstance(v, int | float) or not np.isfinite(v)]
        if bad or not spec.scale > 0:
            raise ModelFormatError(f"{mpath}: preprocessing of column '{spec.name}' has an "
                                   f"invalid {', '.join(bad) or 'scale'} (not a finite number"
                                   f"{'' if bad else ' above 0'})")
    if not _all_finite(manifest.get("preprocessing")):
        raise ModelFormatError(f"{mpath}: preprocessing holds a value that is not finite")
    ids = model.segment_ids_
    if len(ids) != model.k or len(set(ids.tolist())) != model.k:
        raise ModelFormatError(f"{mpath}: {len(ids)} segment ids for k={model.k} segments")
    segments = manifest.get("segments")
    if segments is not None:
        listed = sorted(int(s.get("segment_id", -1)) for s in segments
                        if isinstance(s, dict))
        if listed != sorted(ids.tolist()):
            raise ModelFormatError(f"{mpath}: the segments listed ({listed}) do not match the "
                                   f"model's segment ids ({sorted(ids.tolist())})")
