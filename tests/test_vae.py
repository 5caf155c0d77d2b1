"""The VAE's reparameterisation noise: seeded, the same for every batch size and device."""

from __future__ import annotations

import pytest
import torch

from unlearn_cli.metrics import negative_elbo
from unlearn_cli.models import VAE
from unlearn_cli.models.vae import cpu_normal


@pytest.mark.parametrize("cols", [1, 4, 16, 20, 64])
def test_cpu_normal_rows_do_not_depend_on_the_batching(cols):
    """Row i is the same whether the rows come in one draw or in batches of any size."""
    torch.manual_seed(0)
    whole = cpu_normal(37, cols)  # (37, cols)
    for batch_size in (1, 7, 16, 36):
        torch.manual_seed(0)
        parts = [cpu_normal(len(r), cols) for r in torch.arange(37).split(batch_size)]
        assert torch.equal(torch.cat(parts), whole), batch_size


@pytest.fixture(scope="module")
def vae_and_images():
    torch.manual_seed(0)
    vae = VAE("mlp", 1, 28, (32,), 4).eval()
    images = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return vae, images


def test_negative_elbo_does_not_depend_on_the_batch_size(vae_and_images):
    vae, images = vae_and_images
    one = negative_elbo(vae, images, batch_size=50, seed=3)  # (50,)
    for batch_size in (1, 7, 16):
        batched = negative_elbo(vae, images, batch_size=batch_size, seed=3)
        torch.testing.assert_close(batched, one, rtol=1e-6, atol=1e-4)  # float32 sums


DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]  # every device present


@pytest.mark.parametrize("device", DEVICES)
def test_negative_elbo_is_the_same_on_every_device(vae_and_images, device):
    vae, images = vae_and_images
    on_cpu = negative_elbo(vae, images, batch_size=16, seed=3)
    on_device = negative_elbo(vae.to(device), images, batch_size=7, seed=3)
    vae.cpu()
    torch.testing.assert_close(on_device, on_cpu, rtol=1e-5, atol=1e-3)  # TF32 and kernel sums
