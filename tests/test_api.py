"""unlearn_cli.api, the surface the lab scripts use: every name it offers exists, and `encode`
gives the encoder's posterior means in the data's order."""

from __future__ import annotations

import torch

from unlearn_cli import api


def test_every_name_in_all_is_there():
    assert len(set(api.__all__)) == len(api.__all__)
    assert [name for name in api.__all__ if not hasattr(api, name)] == []


def test_encode_gives_the_posterior_means_of_every_sample(tiny_vae):
    ckpt = api.load_checkpoint(tiny_vae, "vae")
    data = api.training_set(ckpt.dataset)
    means = api.encode(ckpt.model, data, torch.device("cpu"))
    with torch.no_grad():
        x = torch.stack([data[i][0] for i in range(len(data))])  # (N, 1, 28, 28)
        mu, _ = ckpt.model.encode(x)  # (N, z)
    assert means.shape == (len(data), ckpt.model.latent_dim)
    torch.testing.assert_close(means, mu)
