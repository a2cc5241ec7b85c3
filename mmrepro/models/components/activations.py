"""Hidden-layer activations by config name."""

from torch import nn

ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU, "softplus": nn.Softplus, "tanh": nn.Tanh}
