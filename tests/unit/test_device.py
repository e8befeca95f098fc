"""check_device: accepted devices, and a ValueError naming the parameter for the rest."""

import pytest
import torch

from sk_mtbnn.estimators._device import check_device

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = torch.backends.mps.is_available()


@pytest.mark.parametrize("device", ["cpu", "cpu:0", torch.device("cpu")])
def test_cpu_is_accepted(device):
    parsed = check_device(device)
    assert isinstance(parsed, torch.device)
    assert parsed.type == "cpu"
    assert torch.zeros(2, device=parsed).device.type == "cpu"


@pytest.mark.parametrize(
    "device, match",
    [
        ("gpu", "not a valid device"),
        ("CUDA", "not a valid device"),
        ("cuda:x", "not a valid device"),
        ("", "not a valid device"),
        (0, "must be a string or a torch.device"),
        (None, "must be a string or a torch.device"),
        (1.0, "must be a string or a torch.device"),
        ("meta", "hold no data"),
        (torch.device("meta"), "hold no data"),
        ("xla", "type 'xla'"),
        ("cpu:1", "no device 1"),
    ],
)
def test_invalid_devices_raise_a_value_error_naming_the_parameter(device, match):
    with pytest.raises(ValueError, match=match) as info:
        check_device(device, name="predict_device")
    assert "predict_device" in str(info.value)


@pytest.mark.skipif(HAS_CUDA, reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda", 1)])
def test_cuda_without_a_gpu_raises_instead_of_torchs_assertion(device):
    with pytest.raises(ValueError, match=r"device=.*use device='cpu'"):
        check_device(device)


@pytest.mark.skipif(HAS_MPS, reason="checks the error on a machine without MPS")
def test_mps_without_apple_silicon_raises():
    with pytest.raises(ValueError, match="MPS backend"):
        check_device("mps")


def test_cuda_index_out_of_range_names_the_visible_devices(monkeypatch):
    # One visible GPU, simulated: check_device only asks torch how many
    # devices there are, so the range check runs on any machine.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert check_device("cuda:0") == torch.device("cuda", 0)
    assert check_device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError, match=r"has 1 visible CUDA device\(s\), 'cuda:0' to 'cuda:0'"):
        check_device("cuda:3")


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_every_visible_gpu_is_accepted_and_holds_data():
    for index in range(torch.cuda.device_count()):
        device = check_device(f"cuda:{index}")
        assert torch.zeros(2, device=device).device == device
    with pytest.raises(ValueError, match="visible CUDA device"):
        check_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.skipif(not HAS_MPS, reason="needs Apple silicon")
def test_mps_is_accepted_and_holds_data():
    device = check_device("mps")
    assert torch.zeros(2, device=device).device.type == "mps"
