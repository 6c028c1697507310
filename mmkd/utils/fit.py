"""Whether a state dict fits a model: missing, unexpected and misshapen
keys, reported the same way for teachers, testing and export."""
import warnings

from torch import nn


def mismatch_report(model: nn.Module, state: dict, limit: int = 5) -> str:
    """Missing keys, unexpected keys and shape mismatches of ``state`` for
    ``model``, the first few of each; empty when every key fits.

    Example:
        >>> print(mismatch_report(nn.Linear(2, 3), dict(weight=nn.Linear(
        ...     2, 4).weight)))
        1 missing keys (first: ['bias']); 1 shape mismatches (first: \
['weight: checkpoint (4, 2) vs model (3, 2)'])
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state.items()
        if k in own and hasattr(v, 'shape') and v.shape != own[k].shape
    ]
    parts = [
        f'{len(items)} {what} (first: {items[:limit]})'
        for what, items in (('missing keys', missing), ('unexpected keys',
                                                        unexpected),
                            ('shape mismatches', shapes)) if items
    ]
    return '; '.join(parts)


def check_fit(model: nn.Module, state: dict, source: str, what: str,
              strict: bool, hint: str) -> None:
    """Raise (``strict``) or warn when ``state`` does not fit ``model``.

    Args:
        model (nn.Module): The model the weights are for.
        state (dict): The weights.
        source (str): Where they come from, e.g. the checkpoint's path.
        what (str): What the model is, e.g. 'the student of CONFIG'.
        strict (bool): Whether a mismatch is an error.
        hint (str): How to load anyway, e.g. 'pass --no-strict'.
    """
    report = mismatch_report(model, state)
    if not report:
        return
    if strict:
        raise RuntimeError(
            f'{source} does not fit {what}: {report}. Check that the '
            f'checkpoint was trained with this config, or {hint}')
    warnings.warn(f'{source} does not fit {what}, loading what fits: '
                  f'{report}')
