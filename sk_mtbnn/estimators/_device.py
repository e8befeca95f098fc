"""Validation of the ``device`` parameter: a clear error instead of a torch traceback."""

from __future__ import annotations

import torch

#: Device types the estimators train and predict on.
DEVICE_TYPES = ("cpu", "cuda", "mps")

_EXPECTED = "'cpu', 'cuda', 'cuda:N' (N a GPU index), 'mps' or a torch.device of one of these"


def check_device(device, name: str = "device") -> torch.device:
    """The :class:`torch.device` for ``device``, checked to exist on this machine.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, or a
        :class:`torch.device` of one of these types.
    name : str, default="device"
        Name of the parameter, for the error message.

    Returns
    -------
    device : torch.device
        The parsed device (``"cuda"`` keeps no index: torch's current GPU).

    Raises
    ------
    ValueError
        When ``device`` is not a device of a supported type (``"gpu"``,
        ``0``, ``"meta"``, which cannot hold data), or names a device this
        machine does not have (``"cuda"`` without a usable GPU, ``"cuda:3"``
        with fewer than four, ``"mps"`` off Apple silicon).

    Examples
    --------
    >>> from sk_mtbnn.estimators._device import check_device
    >>> check_device("cpu")
    device(type='cpu')
    >>> check_device("gpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: device='gpu' is not a valid device; use 'cpu', 'cuda', ...
    """
    parsed = _parse(device, name)
    if parsed.type == "cuda":
        _check_cuda(parsed, device, name)
    elif parsed.type == "mps":
        _check_mps(parsed, device, name)
    elif parsed.index not in (None, 0):
        raise ValueError(f"{name}={device!r}: the CPU has no device {parsed.index}; use 'cpu'.")
    return parsed


def _parse(device, name: str) -> torch.device:
    # torch.device(0) means cuda:0, which is too implicit for a parameter:
    # only strings and torch.device objects are accepted.
    if isinstance(device, torch.device):
        parsed = device
    elif isinstance(device, str):
        try:
            parsed = torch.device(device)
        except RuntimeError:
            raise ValueError(f"{name}={device!r} is not a valid device; use {_EXPECTED}.") from None
    else:
        raise ValueError(
            f"{name} must be a string or a torch.device; got {device!r} "
            f"({type(device).__name__}). Use {_EXPECTED}."
        )
    if parsed.type not in DEVICE_TYPES:
        hint = " ('meta' tensors hold no data)" if parsed.type == "meta" else ""
        raise ValueError(
            f"{name}={device!r} is a device of type {parsed.type!r}, which the estimators "
            f"cannot train on{hint}; use {_EXPECTED}."
        )
    return parsed


def _check_cuda(parsed: torch.device, device, name: str) -> None:
    if not torch.cuda.is_available():
        why = (
            "this torch build has no CUDA support (a CPU-only wheel)"
            if not torch.backends.cuda.is_built()
            else "no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)"
        )
        raise ValueError(f"{name}={device!r} but {why}; use {name}='cpu'.")
    count = torch.cuda.device_count()
    if parsed.index is not None and parsed.index >= count:
        raise ValueError(
            f"{name}={device!r} but this machine has {count} visible CUDA device(s), "
            f"'cuda:0' to 'cuda:{count - 1}'; use one of those or 'cuda'."
        )


def _check_mps(parsed: torch.device, device, name: str) -> None:
    if not torch.backends.mps.is_available():
        raise ValueError(
            f"{name}={device!r} but the MPS backend (Apple silicon GPUs) is not available "
            f"on this machine; use {name}='cpu'."
        )
    if parsed.index not in (None, 0):
        raise ValueError(f"{name}={device!r}: there is one MPS device; use 'mps'.")
