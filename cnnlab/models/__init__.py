"""One small file per family; importing this package registers every architecture."""
from . import lenet, alexnet, vgg, nin, googlenet, resnet, densenet, mobilenet  # noqa: F401
