"""Saving and loading fitted estimators without pickle.

:func:`save` writes one zip file: ``metadata.json`` (the format and library
versions, the estimator's class and parameters and its fitted attributes as a
JSON tree), ``arrays.npz`` (numpy arrays, read with ``allow_pickle=False``)
and ``tensors.pt`` (a flat dict of torch tensors: the networks' state dicts,
read with ``torch.load(weights_only=True)``). :func:`load` rebuilds the
estimator from an allow-list of sk_mtbnn classes and its networks through the
estimator's own construction hooks, so loading a file never unpickles an
object or imports a module named by the file.

Version policy: a file records :data:`FORMAT_VERSION` and the sk_mtbnn
version that wrote it. It is read only by a release with the same format
version and the same ``major.minor`` series (patch and development releases
of a series read each other's files); other files are refused with a
:class:`ValueError` that names both versions. See the :ref:`User Guide
<persistence>`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from ._persistence._codec import (
    Decoder,
    Encoder,
    FormatError,
    UnrepresentableError,
    _estimator_classes,
)
from ._persistence._network import decode_state, encode_state

__all__ = ["FORMAT_VERSION", "FormatError", "UnrepresentableError", "load", "read_metadata", "save"]

#: Version of the file layout; files of another version are refused.
FORMAT_VERSION = 1
_FORMAT = "sk_mtbnn.persistence"
_METADATA, _ARRAYS, _TENSORS = "metadata.json", "arrays.npz", "tensors.pt"


def _library_versions() -> dict:
    import sklearn
    import skorch

    from . import __version__

    return {
        "sk_mtbnn": __version__,
        "python": ".".join(map(str, sys.version_info[:3])),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "skorch": skorch.__version__,
    }


def save(estimator, path: str | os.PathLike) -> None:
    """Save an sk_mtbnn estimator, fitted or not, to a file that loads without pickle.

    Stores the parameters, every attribute of the last fit and the trained
    networks (as state dicts), with the versions of sk_mtbnn and its
    dependencies. pandas DataFrames and Series (``task_features`` given to
    ``fit``, ``alpha``) are stored as plain data when their columns are
    numeric or boolean. A value the format cannot store (e.g. a torchjd
    aggregator object as ``aggregator``, a DataFrame with a ``category``
    column) is refused with a :class:`TypeError` that says what to pass
    instead; nothing is written then.

    Parameters
    ----------
    estimator : estimator
        A :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor`,
        :class:`~sk_mtbnn.BayesAggMTLRegressor`,
        :class:`~sk_mtbnn.BayesAggMTLClassifier` or
        :class:`~sk_mtbnn.IterativeMagnitudePruning` (not a subclass).
    path : str or path-like
        File to write (conventionally ``*.skmtbnn``); replaced atomically
        if it exists.

    See Also
    --------
    load : Read the file back.
    read_metadata : The versions and class recorded in a file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import sk_mtbnn
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-2, 2, size=(40, 1))
    >>> y = np.column_stack([np.sin(X[:, 0]), np.cos(X[:, 0])])
    >>> reg = sk_mtbnn.SparseMultiTaskBNNRegressor((8,), max_epochs=5, random_state=0)
    >>> reg = reg.fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skmtbnn")
    >>> sk_mtbnn.save(reg, path)
    >>> loaded = sk_mtbnn.load(path)
    >>> np.array_equal(loaded.predict(X), reg.predict(X))
    True
    """
    if type(estimator) not in _estimator_classes().values():
        raise TypeError(
            f"save() stores the sk_mtbnn estimators {sorted(_estimator_classes())}; got a "
            f"{type(estimator).__qualname__}. Subclasses are refused too: their extra state "
            "would be lost."
        )
    encoder = Encoder(encode_state)
    tree = encoder.value(estimator, type(estimator).__name__)
    arrays, tensors = io.BytesIO(), io.BytesIO()
    np.savez(arrays, **encoder.arrays)
    torch.save(encoder.tensors, tensors)
    members = {_ARRAYS: arrays.getvalue(), _TENSORS: tensors.getvalue()}
    metadata = {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": _library_versions(),
        "estimator": type(estimator).__name__,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
        "tree": tree,
    }
    text = json.dumps(metadata, allow_nan=False, separators=(",", ":"))
    path = Path(path)
    # Written next to the target, then renamed: an interrupted save leaves the old file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file, zipfile.ZipFile(file, "w") as archive:
            archive.writestr(_METADATA, text, compress_type=zipfile.ZIP_DEFLATED)
            for name, data in members.items():
                archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata of a saved estimator, without loading it.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    metadata : dict
        ``format_version``, ``versions`` (of sk_mtbnn, Python, numpy, torch,
        scikit-learn and skorch at saving time), ``estimator`` (the class
        name) and ``tree`` (the encoded parameters and fitted state).

    Examples
    --------
    >>> import os, tempfile
    >>> import sk_mtbnn
    >>> path = os.path.join(tempfile.mkdtemp(), "prior.skmtbnn")
    >>> sk_mtbnn.save(sk_mtbnn.BayesAggMTLRegressor(), path)  # unfitted: parameters only
    >>> meta = sk_mtbnn.persistence.read_metadata(path)
    >>> meta["estimator"], meta["format_version"] == sk_mtbnn.persistence.FORMAT_VERSION
    ('BayesAggMTLRegressor', True)
    """
    with _open(path) as archive:
        return _metadata(archive, path)


def load(path: str | os.PathLike, *, device: str | torch.device | None = None):
    """Load an estimator written by :func:`save`; never unpickles anything.

    The estimator is rebuilt from its class (one of sk_mtbnn's, by name) and
    its parameters, its networks through its own construction hooks, then its
    stored fitted state is loaded: predictions equal the saved estimator's
    exactly, and it can be refitted.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    device : str or torch.device, default=None
        Replaces the ``device`` parameter of the estimator (and of its
        members), e.g. ``"cpu"`` for a model trained on a GPU; None keeps the
        saved one. Predictions are identical on the device they were saved
        from.

    Returns
    -------
    estimator : estimator
        The estimator, fitted if it was when saved.

    Raises
    ------
    ValueError
        If the file was written with another format version or another
        ``major.minor`` series of sk_mtbnn (the message names both), names a
        class sk_mtbnn does not load, is corrupted or incomplete, or holds
        anything but arrays and tensors (e.g. a pickle payload).
    ImportError
        If the file holds a pandas DataFrame or Series and pandas is not
        installed.

    See Also
    --------
    save : Write the file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import sk_mtbnn
    >>> X = np.linspace(-2, 2, 30)[:, None]
    >>> y = np.where(X[:, 0] > 0, "up", "down")
    >>> clf = sk_mtbnn.BayesAggMTLClassifier((8,), max_epochs=5, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "clf.skmtbnn")
    >>> sk_mtbnn.save(clf, path)
    >>> same = sk_mtbnn.load(path)
    >>> same.classes_.tolist(), np.array_equal(same.predict_proba(X), clf.predict_proba(X))
    (['down', 'up'], True)
    """
    with _open(path) as archive:
        metadata = _metadata(archive, path)
        _check_compatible(metadata, path)
        arrays = _read_arrays(_member(archive, _ARRAYS, metadata, path), path)
        tensors = _read_tensors(_member(archive, _TENSORS, metadata, path), path)
    decoder = Decoder(arrays, tensors, decode_state, device)
    try:
        estimator = decoder.value(metadata.get("tree"))
    except FormatError as error:
        raise FormatError(f"{path} is not a valid sk_mtbnn file: {error}") from None
    except (TypeError, KeyError, AttributeError, IndexError, RuntimeError, OverflowError) as error:
        raise FormatError(
            f"{path} is not a valid sk_mtbnn file: its content does not fit the format "
            f"({type(error).__name__}: {error})."
        ) from None
    if type(estimator) not in _estimator_classes().values():
        raise FormatError(f"{path} does not hold an sk_mtbnn estimator.")
    return estimator


# ------------------------------------------------------------------ reading
def _open(path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise FormatError(
            f"{path} is not a file written by sk_mtbnn.save (not a readable zip archive: {error})."
        ) from None


def _metadata(archive: zipfile.ZipFile, path) -> dict:
    names = set(archive.namelist())
    if names != {_METADATA, _ARRAYS, _TENSORS}:
        raise FormatError(
            f"{path} is not a complete sk_mtbnn file: it holds {sorted(names)}, expected "
            f"{sorted([_METADATA, _ARRAYS, _TENSORS])}."
        )
    try:
        metadata = json.loads(archive.read(_METADATA))
    except (zipfile.BadZipFile, ValueError, UnicodeDecodeError) as error:
        raise FormatError(f"{path} is corrupted: its metadata cannot be read ({error}).") from None
    if type(metadata) is not dict or metadata.get("format") != _FORMAT:
        raise FormatError(f"{path} is not a file written by sk_mtbnn.save.")
    return metadata


def _series(version) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", str(version))
    return (int(match[1]), int(match[2])) if match else None


def _check_compatible(metadata: dict, path) -> None:
    from . import __version__

    written = metadata.get("versions", {}).get("sk_mtbnn", "unknown")
    advice = (
        f"Load it with sk_mtbnn {written} (pip install 'sk_mtbnn=={written}') and refit the "
        "estimator with this version; read_metadata(path) shows its parameters."
    )
    if metadata.get("format_version") != FORMAT_VERSION:
        raise FormatError(
            f"{path} was written in format version {metadata.get('format_version')!r} by "
            f"sk_mtbnn {written}; this sk_mtbnn {__version__} reads format version "
            f"{FORMAT_VERSION} only. {advice}"
        )
    if _series(written) is None or _series(written) != _series(__version__):
        raise FormatError(
            f"{path} was written by sk_mtbnn {written}; this is sk_mtbnn {__version__}. "
            "Files are read by the release series that wrote them (same major.minor), "
            f"since fitted state changes between series. {advice}"
        )


def _member(archive: zipfile.ZipFile, name: str, metadata: dict, path) -> bytes:
    try:
        data = archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise FormatError(f"{path} is corrupted: {name} cannot be read ({error}).") from None
    expected = metadata.get("sha256", {}).get(name)
    if hashlib.sha256(data).hexdigest() != expected:
        raise FormatError(
            f"{path} is corrupted: the checksum of {name} does not match its metadata."
        )
    return data


def _read_arrays(data: bytes, path) -> dict:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:
        raise FormatError(
            f"{path}: {_ARRAYS} holds something other than plain numpy arrays (e.g. pickled "
            f"objects), which load refuses ({error})."
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise FormatError(f"{path} is corrupted: {_ARRAYS} cannot be read ({error}).") from None


def _read_tensors(data: bytes, path) -> dict:
    try:
        tensors = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as error:
        raise FormatError(
            f"{path}: {_TENSORS} holds something other than tensors (e.g. a pickle payload), "
            f"which load refuses without executing it ({type(error).__name__})."
        ) from None
    if type(tensors) is not dict or not all(
        isinstance(k, str) and type(v) is torch.Tensor for k, v in tensors.items()
    ):
        raise FormatError(f"{path}: {_TENSORS} is not a dict of tensors.")
    return tensors
