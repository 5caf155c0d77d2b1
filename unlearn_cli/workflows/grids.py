"""Sample grids: an 8x8 PNG of images decoded from fixed latent vectors, alone or beside the
grid of the model it was made from.
"""

from __future__ import annotations

from pathlib import Path

import torch

from unlearn_cli.engine.checkpoint import Checkpoint, atomic_write
from unlearn_cli.errors import UsageError

GRID_SEED = 0  # every grid decodes the same latent vectors, so grids compare image by image
GRID_SIDE = 8  # an 8x8 grid
GRID_PADDING = 2  # white pixels around each image
GRID_GAP = 16  # white pixels between the before and after grids of --compare-grid
LABEL_HEIGHT = 16  # a white strip over the panels that names each one


def check_grid_pair(vae: Checkpoint, before: Checkpoint) -> None:
    """Grids compare image by image only between models of one latent space and image shape."""
    if (before.model.latent_dim, before.model.shape) != (vae.model.latent_dim, vae.model.shape):
        raise UsageError(
            f"{before.path}: its latent size or image shape differs from the "
            "model's, so their grids cannot match image by image; compare a model with the one "
            "it was made from",
            "compare_grid",
        )


@torch.no_grad()
def sample_grid(vae: Checkpoint, device: torch.device | str = "cpu") -> torch.Tensor:
    """An 8x8 grid of images decoded from the GRID_SEED latent vectors, (C, H, W) in [0, 1]."""
    from torchvision.utils import make_grid

    model = vae.model.to(device).eval()
    generator = torch.Generator().manual_seed(GRID_SEED)
    # torch types a Module's attributes as Tensor | Module, hence the ignores
    z = torch.randn(GRID_SIDE * GRID_SIDE, model.latent_dim, generator=generator)  # type: ignore[call-overload]  # (64, z)
    images = model.decode(z.to(device)).cpu()  # type: ignore[operator]  # (64, C, H, W)
    grid = make_grid(images, nrow=GRID_SIDE, padding=GRID_PADDING, pad_value=1.0)  # (3, H', W')
    return grid[: images.shape[1]]  # make_grid repeats a grey channel three times


def write_grid(
    path: str | Path,
    vae: Checkpoint,
    before: Checkpoint | None = None,
    device: torch.device | str = "cpu",
    reference: Checkpoint | None = None,
    title: str = "this model",
) -> Path:
    """Write the sample grid of `vae` as a PNG; with `before`, that model's grid on the left;
    with `reference` (the retrained model), its grid on the right. Each panel is named over it
    when there are several (`title` names `vae`'s)."""
    from PIL import Image

    for other in (before, reference):
        if other is not None:
            check_grid_pair(vae, other)
    named = [(m, t) for m, t in ((before, "before"), (vae, title), (reference, "reference")) if m]
    panels = [sample_grid(m, device) for m, _ in named]
    gap = torch.ones(panels[0].shape[0], panels[0].shape[1], GRID_GAP)  # (C, H, gap) white
    parts = [part for panel in panels for part in (gap, panel)][1:]
    grid = torch.cat(parts, dim=2)  # before | gap | after | gap | reference
    pixels = (grid * 255).round().clamp(0, 255).byte().permute(1, 2, 0)  # (H, W, C)
    array = pixels.squeeze(-1).numpy() if pixels.shape[-1] == 1 else pixels.numpy()
    image = Image.fromarray(array)
    if len(panels) > 1:
        image = labelled(image, [t for _, t in named], panels[0].shape[2] + GRID_GAP)
    path = Path(path)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
    return path


def labelled(image, titles: list[str], stride: int):
    """`image` under a white strip that names each panel, one every `stride` pixels."""
    from PIL import Image, ImageDraw

    out = Image.new(image.mode, (image.width, image.height + LABEL_HEIGHT), "white")
    out.paste(image, (0, LABEL_HEIGHT))
    draw = ImageDraw.Draw(out)
    for i, text in enumerate(titles):
        draw.text((i * stride + GRID_PADDING, 2), text, fill="black")
    return out
