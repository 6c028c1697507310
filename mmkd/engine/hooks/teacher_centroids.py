"""Class-mean teacher embeddings for the ND loss."""
import os.path as osp
import warnings
from typing import Optional

import torch
from mmengine.dist import all_reduce, is_main_process

from mmkd.models.distillers.single_teacher import distiller_of
from mmkd.registry import HOOKS
from mmkd.utils import rng_kept
from .centroid_files import fingerprint, reusable_centroids, save_centroids
from .constants import ConstantHook


@HOOKS.register_module()
class TeacherCentroidHook(ConstantHook):
    """Compute the teacher's class centroids before training, for ND.

    The ND loss of `Improving Knowledge Distillation via Regularizing
    Feature Norm and Direction <https://arxiv.org/abs/2305.17007>`_ (Wang et
    al., 2023) pulls student embeddings towards the direction of the
    teacher's class-mean embedding. Before training this hook runs the
    distiller (no gradients, student in eval mode so its BN statistics stay
    put) over ``num_iters`` training batches, averages the teacher's
    embeddings per label (background included), all-reduces the sums under
    DDP and sets ``model.constants[name]``, which losses read as
    ``'const.<name>'``. The result is saved as ``<work_dir>/<name>.pth``
    with a fingerprint of the teacher's weights, the training data config
    and these settings; a later run reuses it only when the fingerprint
    matches or when it resumed from a checkpoint, and logs which (a stale
    file is computed again). ``file`` loads given centroids instead.

    The official KD++ code accumulates the teacher's embeddings of the
    student's sampled proposals over 30,000 training iterations, background
    included, and trains with those fixed means. ``running=True`` does the
    same within one run: the estimate starts from the ``num_iters`` batches
    above and every training step adds the embeddings and labels that the
    loss reading ``'const.<name>'`` received, so the centroids become the
    cumulative class means over all the proposals seen so far (ranks are
    summed under DDP; the sums are saved in checkpoints, so a resumed run
    continues them). Without it the centroids stay those of the first
    ``num_iters`` batches, taken on an untrained student's proposals.

    Args:
        source (str): Paired record of the embeddings; the teacher side is
            used. Defaults to 'roi.emb'.
        labels (str): Plain record of their labels. Defaults to
            'roi.labels'.
        num_classes (int, optional): Number of centroids, background
            included. Defaults to None: the student's RoI head's classes + 1.
        name (str): Name of the constant and of the saved file. Defaults to
            'roi_centers'.
        num_iters (int): Training batches to average over. Defaults to 100.
        file (str, optional): Load the centroids from this file instead of
            computing them. Defaults to None.
        running (bool): Keep updating the centroids during training with
            every step's teacher embeddings. Defaults to False.

    Example:
        >>> hook = TeacherCentroidHook(num_iters=10)
        >>> hook.name, hook.num_iters
        ('roi_centers', 10)
    """

    priority = 'HIGH'

    def __init__(self,
                 source: str = 'roi.emb',
                 labels: str = 'roi.labels',
                 num_classes: Optional[int] = None,
                 name: str = 'roi_centers',
                 num_iters: int = 100,
                 file: Optional[str] = None,
                 running: bool = False) -> None:
        if num_iters < 1:
            raise ValueError(f'TeacherCentroidHook.num_iters={num_iters} '
                             'must be >= 1')
        if file is not None and not osp.isfile(file):
            raise FileNotFoundError(
                f'TeacherCentroidHook.file: no file at {file!r}; leave it '
                'None to compute the centroids before training')
        self.source, self.labels = source, labels
        self.num_classes = num_classes
        self.name, self.num_iters, self.file = name, num_iters, file
        if not isinstance(running, bool):
            raise ValueError('TeacherCentroidHook.running must be True or '
                             f'False, got {running!r}')
        self.running = running
        self._sums = self._counts = self._initial_counts = None
        self._seen = []

    def constant_names(self) -> tuple:
        """The one constant set, ``name``."""
        return (self.name, )

    def quick_settings(self) -> dict:
        """Two batches for the centroids of a smoke run."""
        return dict(num_iters=2)

    def compute(self, distiller, batches) -> dict:
        """The class means over ``batches`` (not all-reduced further)."""
        num_classes = self.num_classes or self._infer_classes(distiller)
        return {
            self.name:
            class_means(distiller, batches, self.source, self.labels,
                        num_classes)
        }

    def before_train(self, runner) -> None:
        model = distiller_of(runner.model)
        if not hasattr(model, 'constants'):
            raise TypeError('TeacherCentroidHook needs an mmkd distiller as '
                            f'model, got {type(model).__name__}')
        num_classes = self.num_classes or self._infer_classes(model)
        path = self.file or osp.join(runner.work_dir, f'{self.name}.pth')
        stamp = None if self.file else fingerprint(
            runner, model,
            dict(source=self.source, labels=self.labels,
                 num_classes=num_classes, num_iters=self.num_iters))
        centers = reusable_centroids(runner, path, stamp)
        if centers is None:
            centers = self._compute(runner, model, num_classes)
            if is_main_process():
                save_centroids(centers, path, stamp)
            runner.logger.info(f'ND centroids computed over {self.num_iters}'
                               f' batches, saved to {path}')
        if centers.dim() != 2 or centers.shape[0] != num_classes:
            raise ValueError(
                f'TeacherCentroidHook: centroids of shape '
                f'{tuple(centers.shape)} from {path!r}; expected '
                f'({num_classes}, D): one per class, background included')
        model.constants[self.name] = centers.to(
            next(model.parameters()).device)
        if self.running:
            self._watch(model, centers)

    # ---- running means ---------------------------------------------------
    def _watch(self, model, centers: torch.Tensor) -> None:
        """Record the embeddings and labels every step's ND loss gets."""
        const = f'const.{self.name}'
        found = [(n, s) for n, s in model.loss_specs.items()
                 if const in s.inputs.values()]
        if not found:
            raise ValueError(
                f'TeacherCentroidHook(running=True): no loss reads {const!r}'
                f' (model.losses.*.inputs); nothing to update from')
        name, spec = found[0]
        args = [a for a, src in spec.inputs.items() if src == self.labels]
        if spec.teacher != self.source or not args:
            raise ValueError(
                f'TeacherCentroidHook(running=True): model.losses.{name} '
                f'reads teacher {spec.teacher!r} and inputs {spec.inputs}; '
                f'the hook averages source={self.source!r} by '
                f'labels={self.labels!r}: make them the same records')
        if self._sums is None:  # not restored from a checkpoint
            counts = self._initial_counts
            self._counts = (counts.clone() if counts is not None else
                            torch.zeros(len(centers), dtype=torch.float64))
            self._sums = centers.double() * self._counts[:, None]
        self._publish(model)

        def record(module, inputs, kwargs) -> None:
            if module.training:
                self._seen.append((inputs[1].detach(), kwargs[args[0]]))

        model.distill_losses[name].register_forward_pre_hook(
            record, with_kwargs=True)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not self.running or self._sums is None:
            return
        seen, self._seen = self._seen, []
        if seen:  # stay on the embeddings' device: no host copy per step
            device = seen[0][0].device
            self._sums = self._sums.to(device)
            self._counts = self._counts.to(device)
        sums = torch.zeros_like(self._sums)
        counts = torch.zeros_like(self._counts)
        for emb, labels in seen:
            labels = labels.long()
            sums.index_add_(0, labels, emb.double())
            counts += torch.bincount(labels, minlength=len(counts))
        all_reduce(sums)
        all_reduce(counts)
        self._sums += sums
        self._counts += counts
        self._publish(distiller_of(runner.model))

    def _publish(self, model) -> None:
        """The running means where a class was seen, else the old value."""
        current = model.constants[self.name]
        seen = (self._counts > 0)[:, None].to(current.device)
        means = (self._sums / self._counts.clamp(min=1)[:, None]).to(current)
        model.constants[self.name] = torch.where(seen, means, current)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.running and self._sums is not None:
            checkpoint.setdefault('meta', {})[f'{self.name}_running'] = dict(
                sums=self._sums.cpu().clone(),
                counts=self._counts.cpu().clone())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('meta', {}).get(f'{self.name}_running')
        if self.running and state is not None:
            self._sums = state['sums'].double()
            self._counts = state['counts'].double()

    @staticmethod
    def _infer_classes(model) -> int:
        head = getattr(
            getattr(model.student, 'roi_head', None), 'bbox_head', None)
        if head is None:
            raise ValueError('TeacherCentroidHook.num_classes: cannot infer '
                             'it from the student; set it (classes + 1)')
        return head.num_classes + 1

    def _compute(self, runner, model, num_classes: int) -> torch.Tensor:
        # Its own loader (a fresh sampler) and the generators put back: the
        # pass moves neither the training's data order nor its random
        # stream, so a run that reuses saved centroids (e.g. --resume)
        # trains exactly as one that computed them.
        with rng_kept():
            loader = runner.train_dataloader
            if isinstance(runner.cfg.get('train_dataloader'), dict):
                loader = runner.build_dataloader(
                    runner.cfg.train_dataloader,
                    seed=runner.seed,
                    diff_rank_seed=runner._randomness_cfg.get(
                        'diff_rank_seed', False))
            batches = (batch for _, batch in zip(range(self.num_iters),
                                                 loader))
            centers, self._initial_counts = class_means(
                model, batches, self.source, self.labels, num_classes,
                with_counts=True)
        return centers


@torch.no_grad()
def class_means(model,
                batches,
                source: str,
                labels: str,
                num_classes: int,
                with_counts: bool = False):
    """Per-label mean of the teacher side of ``source`` over ``batches``.

    Args:
        model (SingleTeacherDistiller): The distiller (not wrapped).
        batches (Iterable[dict]): Batches as the dataloader yields them.
        source (str): Paired record, e.g. 'roi.emb'.
        labels (str): Plain record of labels, e.g. 'roi.labels'.
        num_classes (int): Number of centroids, background included.
        with_counts (bool): Also return the samples per class. Defaults to
            False.
    """
    sums = counts = None
    was_training = model.student.training
    model.student.eval()
    try:
        for batch in batches:
            data = model.data_preprocessor(batch, True)
            paired = model.collect(data['inputs'], data['data_samples'])[3]
            emb = paired[source][1].float()
            label = paired[labels].long()
            if sums is None:
                sums = emb.new_zeros(num_classes, emb.shape[1])
                counts = emb.new_zeros(num_classes)
            sums.index_add_(0, label, emb)
            counts += torch.bincount(label, minlength=num_classes)
    finally:
        model.student.train(was_training)
    all_reduce(sums)
    all_reduce(counts)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        warnings.warn(f'TeacherCentroidHook: classes {empty} had no sample; '
                      'their centroids are zero (raise num_iters)')
    means = (sums / counts.clamp(min=1)[:, None]).cpu()
    return (means, counts.double().cpu()) if with_counts else means
