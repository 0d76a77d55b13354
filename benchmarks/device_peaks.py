"""Dense bf16 tensor-core peaks of common GPUs, from their spec sheets (no
sparsity): what model FLOP utilisation (MFU) is quoted against."""

__all__ = ['DENSE_BF16_PEAK_TFLOPS', 'dense_bf16_peak_tflops']

# (name fragment, TFLOP/s); the first fragment found in the device's name
# wins, so the more specific names come first.
DENSE_BF16_PEAK_TFLOPS = (
    ('H100 PCIe', 756.0),
    ('H100 NVL', 835.0),
    ('H100', 989.0),  # SXM (torch names it 'NVIDIA H100 80GB HBM3')
    ('H200', 989.0),
    ('GH200', 989.0),
    ('B200', 2250.0),
    ('A100', 312.0),
    ('A800', 312.0),
    ('L40S', 362.0),
    ('L40', 181.0),
    ('L4', 121.0),
    ('A10G', 70.0),
    ('A10', 125.0),
    ('RTX 4090', 165.0),
    ('RTX 3090', 71.0),
)


def dense_bf16_peak_tflops(device_name: str) -> float | None:
    """The spec sheet's dense bf16 peak of a device, by its name (``None``
    for CPUs and unknown cards)."""
    for fragment, peak in DENSE_BF16_PEAK_TFLOPS:
        if fragment in device_name:
            return peak
    return None
