"""Distributed training on CPU-only hosts (gloo)."""
import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Let mmengine's Runner train with DDP on a host without CUDA.

    mmengine 0.10's ``init_dist`` calls ``torch.cuda.set_device`` for the
    ``pytorch`` launcher and its Runner gives DDP ``device_ids=[LOCAL_RANK]``;
    both fail without CUDA. This initialises the gloo process group from the
    torchrun environment first (the Runner then keeps it) and sets
    ``model_wrapper_cfg.device_ids=None``. It does nothing when CUDA is there
    or when ``launcher`` is 'none'.

    Args:
        cfg (Config): The training config, changed in place.
        launcher (str): The ``--launcher`` value.

    Returns:
        bool: Whether CPU distributed training was set up.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise ValueError(
            f'--launcher {launcher!r} needs CUDA; on a CPU-only '
            "host use 'pytorch' (torchrun, as dist_train.sh does)")
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg',
                                             {})['backend'] = 'gloo'
    return True
