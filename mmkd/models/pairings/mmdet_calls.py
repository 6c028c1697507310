"""What the pairings read from mmdet's own calls, in one place.

Pairings record what the student's ``loss()`` computes by hooking modules of
mmdet 3.x heads. Each assumption about how mmdet calls those modules is one
function here, and ``tests/test_models/test_pairings/test_mmdet_calls.py``
checks each against the installed mmdet on real models, so an mmdet upgrade
that changes one fails there, by name, instead of skewing a loss.

- A head's loss module (``loss_cls``, ``loss_bbox``) is called as mmdet's
  loss interface ``loss(pred, target, weight=None, avg_factor=None, ...)``
  (:func:`loss_inputs`); GFL's quality focal loss gets
  ``target = (labels, quality scores)`` (:func:`loss_labels`).
- ``AnchorHead`` (RetinaNet), ``ATSSHead`` and ``GFLHead`` call
  ``loss_cls`` once per level with ``(scores, labels, label_weights,
  avg_factor)``, rows in mmdet's flattening (image, y, x, anchor);
  ``FCOSHead`` calls it once for all levels without weights, and calls
  ``loss_bbox`` only when the batch has positives, weighted by their
  centerness targets.
- ``SingleRoIExtractor`` is called as ``extractor(feats, rois)`` with
  ``rois`` ``(N, 5)``, batch index first (:func:`extractor_rois`).
- A ``BBoxHead`` returns ``(cls_score, bbox_pred)`` and its ``fc_cls`` reads
  the shared-FC embedding; a ``GFLHead`` returns ``(cls_scores,
  bbox_preds)`` per level.
"""
import inspect
from functools import lru_cache
from typing import Any, Callable, Dict, List

from torch import nn
from torch.utils.hooks import RemovableHandle


@lru_cache(maxsize=None)
def _forward_signature(cls: type) -> inspect.Signature:
    """``cls.forward``'s signature, ``self`` included; read once per class
    (the hooks bind every call of the training step to it)."""
    return inspect.signature(cls.forward)


def _bind(module: nn.Module, args: tuple, kwargs: dict) -> tuple:
    """The call's arguments by name, and the parameter names after self."""
    signature = _forward_signature(type(module))
    bound = signature.bind(module, *args, **kwargs).arguments
    return bound, list(signature.parameters)[1:]


def loss_inputs(module: nn.Module, args: tuple, kwargs: dict) -> Dict:
    """A loss call's arguments by the names of mmdet's loss interface:
    ``pred``, ``target``, ``weight``, ``avg_factor`` (None when not given).

    Bound to the module's own ``forward`` signature, so a positional or a
    keyword call reads the same; its first two parameters are the
    prediction and the target, whatever their names (``cls_score``,
    ``label``...).
    """
    bound, params = _bind(module, args, kwargs)
    return dict(
        pred=bound.get(params[0]),
        target=bound.get(params[1]),
        weight=bound.get('weight'),
        avg_factor=bound.get('avg_factor'))


def loss_labels(call: Dict) -> Any:
    """The class labels of a classification loss call read by
    :func:`loss_inputs`: its target, or the first item of GFL's quality
    focal loss target ``(labels, quality scores)``."""
    target = call['target']
    return target[0] if isinstance(target, (tuple, list)) else target


def extractor_rois(module: nn.Module, args: tuple, kwargs: dict):
    """The ``(N, 5)`` RoIs an RoI extractor is called with."""
    return _bind(module, args, kwargs)[0]['rois']


class HookSet:
    """Forward hooks registered on other modules, removable at once.

    Example:
        >>> hooks = HookSet()
        >>> layer = nn.Identity()
        >>> hooks.pre(layer, lambda module, args, kwargs: None)
        >>> len(layer._forward_pre_hooks)
        1
        >>> hooks.remove()
        >>> len(layer._forward_pre_hooks)
        0
    """

    def __init__(self) -> None:
        self.handles: List[RemovableHandle] = []

    def pre(self, module: nn.Module, hook: Callable[..., Any]) -> None:
        """``hook(module, args, kwargs)`` before ``module`` runs."""
        self.handles.append(
            module.register_forward_pre_hook(hook, with_kwargs=True))

    def post(self, module: nn.Module, hook: Callable[..., Any]) -> None:
        """``hook(module, args, output)`` after ``module`` runs."""
        self.handles.append(module.register_forward_hook(hook))

    def remove(self) -> None:
        """Remove every hook registered here."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
