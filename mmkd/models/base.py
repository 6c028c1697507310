"""The model base of mmkd's wrappers (distillers, SFTN teachers)."""
from abc import abstractmethod
from typing import Dict, Optional

from mmengine.model import BaseModel
from torch import Tensor


class WrapperModel(BaseModel):
    """A model that trains and predicts through a wrapped mmdet/mmseg model.

    It dispatches mmengine's ``mode`` as mmdet's ``BaseDetector`` and
    mmseg's ``BaseSegmentor`` do; subclasses define what each mode runs.
    """

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """mmengine's entry point: 'loss', 'predict' or 'tensor'."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f"invalid mode {mode!r}; valid modes are 'loss', "
                           "'predict' and 'tensor'")

    @abstractmethod
    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        """The training losses."""

    @abstractmethod
    def predict(self, inputs: Tensor, data_samples: list) -> list:
        """The deployed model's predictions."""

    @abstractmethod
    def _forward(self, inputs: Tensor, data_samples: Optional[list] = None):
        """The deployed model's raw outputs."""
