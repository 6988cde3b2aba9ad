"""Transfer learning: `TransferClassifier` (a frozen backbone, a new head, then fine-tuning),
`ConvClassifier` (the recipe's pretraining and baseline), and the backbones they build on."""

from zoo.models.transfer import backbones
from zoo.models.transfer.classifier import ConvClassifier, TransferClassifier

__all__ = ["ConvClassifier", "TransferClassifier", "backbones"]
