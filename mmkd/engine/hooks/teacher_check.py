"""Evaluate the teacher on a few validation batches before training."""
import copy
import math
from typing import Optional

import torch
from mmengine.dist import all_gather_object
from mmengine.hooks import Hook

from mmkd.models.distillers.single_teacher import distiller_of
from mmkd.registry import HOOKS
from mmkd.utils import rng_kept

ACTIONS = ('warn', 'error')


def _only_seen_images(metric) -> None:
    """Score a COCO-style metric on the images processed, not the whole
    annotation file (whose other images would count as missed)."""
    if getattr(metric, 'img_ids', False) is not None:
        return
    ids = [
        r[1]['img_id'] for r in metric.results if isinstance(r, tuple)
        and isinstance(r[1], dict) and 'img_id' in r[1]
    ]
    if ids:
        metric.img_ids = sorted({i for part in all_gather_object(ids)
                                 for i in part})


@HOOKS.register_module()
class TeacherCheckHook(Hook):
    """Check that the teacher is right for the data before distilling.

    A teacher loaded from the wrong checkpoint (with ``strict=False``), with
    the wrong normalisation or for other classes looks fine in the log while
    the student learns nothing from it. Before training this hook runs the
    teacher alone over the first ``num_batches`` validation batches, scores
    it with the run's own ``val_evaluator`` (a fresh copy) and logs the
    result; at or below ``floor`` it warns or, with ``action='error'``,
    stops the run, naming the metric, its value and the floor. A resumed
    run is not checked again.

    Args:
        num_batches (int): Validation batches to evaluate. Defaults to 4.
        metric (str, optional): The metric to compare with ``floor``, e.g.
            'coco/bbox_mAP' or 'mIoU'. Defaults to None: the first one the
            evaluator returns.
        floor (float): The teacher must score above it. Defaults to 0.0 (a
            teacher scoring 0 fails).
        action (str): 'warn' or 'error'. Defaults to 'warn'.

    Example:
        >>> hook = TeacherCheckHook(num_batches=2, floor=0.3)
        >>> hook.num_batches, hook.floor, hook.action
        (2, 0.3, 'warn')
    """

    priority = 'LOW'

    def __init__(self,
                 num_batches: int = 4,
                 metric: Optional[str] = None,
                 floor: float = 0.0,
                 action: str = 'warn') -> None:
        if isinstance(num_batches, bool) or not isinstance(
                num_batches, int) or num_batches < 1:
            raise ValueError('TeacherCheckHook.num_batches must be an int '
                             f'>= 1, got {num_batches!r}')
        if not isinstance(floor, (int, float)) or not math.isfinite(floor):
            raise ValueError('TeacherCheckHook.floor must be a finite '
                             f'number, got {floor!r}')
        if action not in ACTIONS:
            raise ValueError(f'TeacherCheckHook.action is {action!r}; valid '
                             f'values are {ACTIONS}')
        self.num_batches, self.metric = num_batches, metric
        self.floor, self.action = floor, action

    def before_train(self, runner) -> None:
        if runner.iter > 0 or runner.val_loop is None:
            return
        model = distiller_of(runner.model)
        with rng_kept():  # training draws what it would without the check
            metrics = self.evaluate(runner, model.teacher)
        if not metrics:
            # mmdet's CocoMetric reports nothing when no box is predicted
            key, value = self.metric or 'every metric', 0.0
        else:
            key = self.metric or next(iter(metrics))
            if key not in metrics:
                raise KeyError(f'TeacherCheckHook.metric is {key!r}; the '
                               f'evaluator gives {sorted(metrics)}')
            value = metrics[key]
        runner.logger.info(
            f'Teacher on {self.num_batches} validation batches: '
            + ', '.join(f'{k}: {v}' for k, v in metrics.items()))
        if value > self.floor:
            return
        message = (
            f'TeacherCheckHook: the teacher scores {key}={value} on '
            f'{self.num_batches} validation batches, at or below floor='
            f'{self.floor}: it does not fit this data. Check '
            'model.teacher.checkpoint (a wrong one loads with strict=False), '
            "the teacher's data_preprocessor (normalisation, BGR/RGB) and "
            'its classes (dataset metainfo)')
        if self.action == 'error':
            raise RuntimeError(message)
        runner.logger.warning(message)

    def evaluate(self, runner, teacher) -> dict:
        """The run's validation metrics of ``teacher`` on the first
        ``num_batches`` batches."""
        evaluator = runner.build_evaluator(
            copy.deepcopy(runner.cfg.val_evaluator))
        loader = runner.val_dataloader
        evaluator.dataset_meta = getattr(loader.dataset, 'metainfo', None)
        size = 0
        with torch.no_grad():
            for i, batch in enumerate(loader):
                if i == self.num_batches:
                    break
                evaluator.process(teacher.val_step(batch), batch)
                size += len(batch['inputs'])
        for metric in evaluator.metrics:
            _only_seen_images(metric)
        return evaluator.evaluate(sum(all_gather_object(size)))
