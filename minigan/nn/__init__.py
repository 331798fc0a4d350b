"""Layers (Modules) that hold Parameters and call the kernels of ``minigan.ops``."""

from minigan.nn import init
from minigan.nn.activation import LeakyReLU, ReLU, Sigmoid, Tanh
from minigan.nn.batchnorm import BatchNorm1d, BatchNorm2d
from minigan.nn.conv import Conv2d, ConvTranspose2d
from minigan.nn.dropout import Dropout
from minigan.nn.gradient_reversal import GradientReversal
from minigan.nn.linear import Linear
from minigan.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss
from minigan.nn.module import Module, Parameter, Sequential, ShapeError
from minigan.nn.pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d
from minigan.nn.resize import ResizeBilinear
from minigan.nn.semi_supervised import FeatureMatchingLoss, LogSumExp
from minigan.nn.shape import Flatten, Reshape
from minigan.nn.summary import summary

__all__ = [
    "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d",
    "CrossEntropyLoss", "Dropout", "Flatten", "LeakyReLU", "Linear", "Module", "Parameter",
    "ReLU", "Reshape", "Sequential", "ShapeError", "Sigmoid", "Tanh", "init", "summary",
    "AvgPool2d", "GlobalAvgPool2d", "MaxPool2d", "ResizeBilinear",
    # adversarial training beyond DCGAN (docs/semi_supervised.md, docs/domain_adversarial.md)
    "FeatureMatchingLoss", "GradientReversal", "LogSumExp",
]
