"""Sample images during training, logged through MMEngine's visualizer."""

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from PIL import Image

from ...image_io import read_rgb_image
from ...models.generation import live_pipeline
from ...registry import HOOKS
from ..random_state import preserved_random_state

__all__ = ['IPAdapterVisualizationHook']


@HOOKS.register_module()
class IPAdapterVisualizationHook(Hook):
    """Render fixed reference/prompt pairs with a fixed seed as training goes.

    The pairs are the first ``num_cases`` samples of the validation set, so
    they need no paths of their own. Each panel (reference | generated) goes
    to ``runner.visualizer.add_image``: PNGs in the work dir's ``vis_data``
    with the default local backend, TensorBoard or others when configured.

    Args:
        interval: Render every ``interval`` epochs (or iterations).
        by_epoch: Count ``interval`` in epochs, else in iterations.
        num_cases: How many validation cases to render.
    """

    priority = 'LOW'

    def __init__(
        self, interval: int = 1, by_epoch: bool = True, num_cases: int = 3
    ) -> None:
        self.interval = interval
        self.by_epoch = by_epoch
        self.num_cases = num_cases

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self.every_n_epochs(runner, self.interval):
            self.render(runner, step=runner.epoch + 1)

    def after_train_iter(
        self, runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        if not self.by_epoch and self.every_n_train_iters(runner, self.interval):
            self.render(runner, step=runner.iter + 1)

    @torch.no_grad()
    def render(self, runner, step: int) -> None:
        """Generate the panels and hand them to the visualizer."""
        if runner.val_loop is None or not runner.rank == 0:
            return  # no validation set (e.g. validate=False): nothing to render
        dataloader = runner.val_dataloader
        dataset = dataloader.dataset if hasattr(dataloader, 'dataset') else None
        if dataset is None:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        cfg = model.generation_cfg
        count = min(self.num_cases, len(dataset))
        # Sampling must not shift the training random stream.
        with preserved_random_state(), live_pipeline(model) as pipe:
            for index in range(count):
                case = dataset.get_data_info(index)
                reference = read_rgb_image(case['img_path'])
                (image,) = pipe(
                    reference,
                    case['prompt'],
                    cfg['negative_prompt'],
                    case['scale'],
                    cfg['steps'],
                    cfg['guidance_scale'],
                    case['seed'],
                    1,
                    cfg['height'],
                    cfg['width'],
                    true_cfg_scale=cfg.get('true_cfg_scale'),
                    **_face_call(case),
                )
                panel = Image.new('RGB', (2 * image.width, image.height))
                panel.paste(reference.resize(image.size), (0, 0))
                panel.paste(image, (image.width, 0))
                runner.visualizer.add_image(
                    f'sample_{case["case_id"]}', np.asarray(panel), step=step
                )


def _face_call(case: dict) -> dict:
    """FaceID's case: generate from its face embedding (the ``.npy`` of
    ``face_embedding``), as the judge does; other cases: nothing."""
    path = case.get('face_embedding_path')
    if not path:
        return {}
    embedding = np.load(path, allow_pickle=False).astype(np.float32)
    return dict(image_embeds=[torch.from_numpy(embedding)[None]])  # (1, D)
